using System.Buffers;
using System.Text.Json;
using Rollout.Core.Translation;

namespace Rollout.Core.DataPath;

/// <summary>
/// A source row's primary key in one canonical text form: a compact JSON array of the key values in key
/// order (<c>[42]</c>, <c>["t1","c9"]</c>). Stores index and join on it; it survives the row's deletion.
/// </summary>
/// <param name="Text">The canonical JSON array.</param>
public sealed record SourceKey(string Text)
{
    /// <summary>Builds the key of a row from its key columns.</summary>
    /// <param name="values">Key values in key order (as ADO.NET returns them).</param>
    public static SourceKey From(IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 1 && values[0] is long single)
        {
            // The common case (one integer key) without a JSON writer: same text as the general path.
            return new SourceKey(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"[{single}]")) { _sort = SortKey.Encode(values) };
        }

        var buffer = new ArrayBufferWriter<byte>(32);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartArray();
            foreach (var value in values)
            {
                var normalized = SourceRow.Normalize(value);
                if (normalized is null)
                {
                    throw new ArgumentException("A key column is NULL.", nameof(values));
                }

                if (!Conversions.Natural(normalized, out var scalar, out var error))
                {
                    throw new ArgumentException($"A key value cannot be encoded: {error}.", nameof(values));
                }

                scalar.WriteTo(writer, []);
            }

            writer.WriteEndArray();
        }

        return new SourceKey(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan)) { _sort = SortKey.Encode(values) };
    }

    private byte[]? _sort;

    /// <summary>Rebuilds a key read back from a store that kept both forms (no re-encoding).</summary>
    /// <param name="text">The canonical text.</param>
    /// <param name="sort">Its <see cref="SortKey"/> encoding, as stored.</param>
    public static SourceKey FromStore(string text, byte[] sort) => new(text) { _sort = sort };

    /// <summary>The order-preserving binary form (<see cref="SortKey"/>), computed once.</summary>
    public byte[] Sort => _sort ??= SortKey.Encode(Values());

    /// <summary>The value of a key that is a single integer.</summary>
    /// <param name="value">The integer.</param>
    /// <returns>False for composite or text keys.</returns>
    public bool TryGetSingleInteger(out long value)
    {
        var sort = Sort;
        if (sort.Length == 9 && sort[0] == 0x20)
        {
            value = unchecked((long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(sort.AsSpan(1)) ^ 0x8000_0000_0000_0000UL));
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>Keys are equal when their canonical text is.</summary>
    /// <param name="other">Other key.</param>
    public bool Equals(SourceKey? other) => other is not null && string.Equals(Text, other.Text, StringComparison.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Text);

    /// <summary>The key values back as JSON elements (numbers as <see cref="long"/> or <see cref="decimal"/>, text as <see cref="string"/>).</summary>
    public IReadOnlyList<object?> Values()
    {
        using var document = JsonDocument.Parse(Text);
        return document.RootElement.EnumerateArray().Select(e => e.ValueKind switch
        {
            JsonValueKind.String => (object?)e.GetString(),
            JsonValueKind.Number when e.TryGetInt64(out var l) => l,
            JsonValueKind.Number => e.GetDecimal(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => null,
        }).ToArray();
    }

    /// <inheritdoc />
    public override string ToString() => Text;
}
