namespace Rollout.Core.Translation;

/// <summary>Column names of a source result set, resolved once and shared by every row read with it.</summary>
public sealed class SourceSchema
{
    private readonly Dictionary<string, int> _ordinals;

    /// <summary>Creates a schema.</summary>
    /// <param name="columns">Column names in result-set order; compared case-insensitively, as SQL does.</param>
    public SourceSchema(IReadOnlyList<string> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        Columns = columns;
        _ordinals = new Dictionary<string, int>(columns.Count, StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < columns.Count; i++)
        {
            if (!_ordinals.TryAdd(columns[i], i))
            {
                throw new ArgumentException($"Column '{columns[i]}' appears twice.", nameof(columns));
            }
        }
    }

    /// <summary>Column names in order.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>The ordinal of a column, or -1.</summary>
    /// <param name="column">Column name.</param>
    public int IndexOf(string column) => _ordinals.TryGetValue(column, out var i) ? i : -1;
}

/// <summary>One source row: a schema and its values (null or <see cref="DBNull"/> for SQL NULL).</summary>
/// <param name="Schema">Column names.</param>
/// <param name="Values">Values in schema order.</param>
/// <remarks>As an <see cref="ISourceRecord"/>, every non-null value is of kind <see cref="SourceValueKind.Other"/>: read as the object it is.</remarks>
public sealed record SourceRow(SourceSchema Schema, IReadOnlyList<object?> Values) : ISourceRecord
{
    /// <summary>Builds a row from name/value pairs (convenient in tests and samples; pipelines share one schema).</summary>
    /// <param name="values">Column values.</param>
    public static SourceRow From(IReadOnlyDictionary<string, object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var names = values.Keys.ToArray();
        return new SourceRow(new SourceSchema(names), names.Select(n => values[n]).ToArray());
    }

    /// <summary>The value of a column by name.</summary>
    /// <param name="column">Column name.</param>
    /// <param name="value">The value, null for SQL NULL.</param>
    /// <returns>False when the row has no such column.</returns>
    public bool TryGet(string column, out object? value)
    {
        var i = Schema.IndexOf(column);
        value = i >= 0 ? Normalize(Values[i]) : null;
        return i >= 0;
    }

    internal static object? Normalize(object? value) => value is DBNull ? null : value;

    /// <inheritdoc />
    SourceValueKind ISourceRecord.KindOf(int ordinal) => Normalize(Values[ordinal]) is null ? SourceValueKind.Null : SourceValueKind.Other;

    /// <inheritdoc />
    long ISourceRecord.GetInt64(int ordinal) => throw new InvalidOperationException("A SourceRow's values are read as objects.");

    /// <inheritdoc />
    ReadOnlySpan<byte> ISourceRecord.GetUtf8(int ordinal) => throw new InvalidOperationException("A SourceRow's values are read as objects.");

    /// <inheritdoc />
    object? ISourceRecord.GetValue(int ordinal) => Normalize(Values[ordinal]);
}
