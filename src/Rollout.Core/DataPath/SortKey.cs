using System.Buffers.Binary;
using System.Text;

namespace Rollout.Core.DataPath;

/// <summary>
/// An order-preserving binary encoding of a key (tuple encoding): comparing two encodings byte by byte
/// gives the order in which SQL sorts the keys with a binary collation (integers numerically and before
/// text, text by its UTF-8 bytes, column by column). Both stores can therefore stream rows in the same
/// order and be compared by merge join, never both in memory.
/// </summary>
public static class SortKey
{
    private const byte IntegerTag = 0x20;
    private const byte TextTag = 0x30;

    /// <summary>Encodes key values (integers and text; GUIDs and other values as their text).</summary>
    /// <param name="values">Key values in key order.</param>
    /// <exception cref="ArgumentException">A value is null or of a type keys cannot have (floating point).</exception>
    public static byte[] Encode(IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 1 && values[0] is long single)
        {
            // The common case without a growing buffer.
            var bytes = new byte[9];
            bytes[0] = IntegerTag;
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(1), unchecked((ulong)single ^ 0x8000_0000_0000_0000UL));
            return bytes;
        }

        var buffer = new List<byte>(16);
        Span<byte> number = stackalloc byte[8];
        foreach (var value in values)
        {
            switch (value)
            {
                case long or int or short or byte or sbyte or ushort or uint:
                    buffer.Add(IntegerTag);
                    BinaryPrimitives.WriteUInt64BigEndian(number, unchecked((ulong)Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) ^ 0x8000_0000_0000_0000UL));
                    buffer.AddRange(number);
                    break;
                case bool b:
                    buffer.Add(IntegerTag);
                    BinaryPrimitives.WriteUInt64BigEndian(number, (b ? 1UL : 0UL) ^ 0x8000_0000_0000_0000UL);
                    buffer.AddRange(number);
                    break;
                case string or Guid:
                    buffer.Add(TextTag);
                    foreach (var b in Encoding.UTF8.GetBytes(value.ToString()!))
                    {
                        buffer.Add(b);
                        if (b == 0)
                        {
                            buffer.Add(0xFF);
                        }
                    }

                    buffer.Add(0);
                    break;
                case null or DBNull:
                    throw new ArgumentException("A key column is NULL.", nameof(values));
                default:
                    throw new ArgumentException($"Key values of type {value.GetType().Name} are not supported; use integer or text keys.", nameof(values));
            }
        }

        return [.. buffer];
    }

    /// <summary>The encoding of a source key.</summary>
    /// <param name="key">The key.</param>
    public static byte[] Of(SourceKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Encode(key.Values());
    }

    /// <summary>Byte-wise comparison of two encodings.</summary>
    /// <param name="a">First.</param>
    /// <param name="b">Second.</param>
    public static int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.SequenceCompareTo(b);
}
