using System.Data;
using System.Globalization;
using System.Text;
using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;

namespace Rollout.Storage.SqlServer;

/// <summary>How a key column sorts (see <see cref="Rollout.Core.DataPath.SortKey"/>): integers numerically, text by code point.</summary>
internal enum KeyKind
{
    Integer,
    Text,
}

/// <summary>A primary key column and how it sorts.</summary>
/// <param name="Name">Column name (a plain SQL identifier).</param>
/// <param name="Kind">Integer or text.</param>
internal sealed record KeyColumn(string Name, KeyKind Kind);

/// <summary>A statement and its parameters: every value travels as a parameter, never in the text.</summary>
/// <param name="Text">T-SQL.</param>
/// <param name="Parameters">Its parameters.</param>
internal sealed record SqlStatement(string Text, IReadOnlyList<SqlParameter> Parameters);

/// <summary>
/// The T-SQL of a source table on change tracking, generated once per table from validated names: pure text, no
/// connection, so that every statement is unit-tested. Every value is a parameter (<c>@after</c>, <c>@max</c>,
/// <c>@n</c>, <c>@size</c>, <c>@to</c>, <c>@table</c>, <c>@k0</c>…); identifiers are validated and bracket-quoted.
/// </summary>
/// <remarks>
/// Key order is the order of <see cref="Rollout.Core.DataPath.SortKey"/>: text key columns are compared and sorted
/// under <see cref="BinaryCollation"/> (code-point order, which is UTF-8 byte order for characters of the basic
/// plane), whatever collation the column declares, so that the source and target streams merge-join. A text key column
/// with a different collation cannot use its index for that order: integer keys, or text keys declared with a BIN2
/// collation, keep reads on the index.
/// </remarks>
internal sealed class SourceTableSql
{
    /// <summary>The collation of key order for text key columns.</summary>
    public const string BinaryCollation = "Latin1_General_100_BIN2";

    /// <summary>The database's highest committed change-tracking version (0 before the first tracked change).</summary>
    public const string CurrentVersion = "SELECT COALESCE(CHANGE_TRACKING_CURRENT_VERSION(), 0)";

    /// <summary>The oldest version from which the table's changes are still complete (NULL when the table is not tracked or not visible).</summary>
    public const string MinValidVersion = "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@table))";

    /// <summary>The table's columns and their system type names (to check the spec against the table).</summary>
    public const string TableColumns = """
        SELECT c.name, TYPE_NAME(c.system_type_id),
               CASE WHEN EXISTS (SELECT 1 FROM sys.indexes i JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
                                 WHERE i.object_id = c.object_id AND i.is_primary_key = 1 AND ic.column_id = c.column_id) THEN 1 ELSE 0 END
        FROM sys.columns c WHERE c.object_id = OBJECT_ID(@table)
        """;

    private readonly KeyColumn[] _keys;
    private readonly string _selectColumns;
    private readonly string _versionApply;
    private readonly string _orderByKeys;

    /// <summary>Creates the statements of one table.</summary>
    /// <param name="table">Validated table name.</param>
    /// <param name="keys">Primary key columns in key order.</param>
    /// <param name="columns">Columns to read; key columns come first whether listed or not.</param>
    public SourceTableSql(SqlServerTableName table, IReadOnlyList<KeyColumn> keys, IReadOnlyList<string> columns)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(columns);
        if (keys.Count == 0)
        {
            throw new ArgumentException("A source table needs at least one key column.", nameof(keys));
        }

        Table = table;
        _keys = [.. keys];
        foreach (var key in _keys)
        {
            SqlServerIdentifier.Column(key.Name);
        }

        Columns = _keys.Select(k => k.Name)
            .Concat(columns.Where(c => !_keys.Any(k => string.Equals(k.Name, c, StringComparison.OrdinalIgnoreCase))))
            .Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        _selectColumns = string.Join(", ", Columns.Select(c => "s." + SqlServerIdentifier.Column(c)));
        var keyList = string.Join(", ", _keys.Select(k => SqlServerIdentifier.Column(k.Name)));
        var rowKeys = string.Join(", ", _keys.Select(k => "s." + SqlServerIdentifier.Column(k.Name)));
        // OUTER APPLY, not CROSS APPLY: CHANGETABLE(VERSION …) answers one row (version NULL when the row never changed
        // since tracking began or its change was cleaned up), and OUTER keeps the source row even if that ever were not so.
        _versionApply = $"OUTER APPLY CHANGETABLE(VERSION {table.Quoted}, ({keyList}), ({rowKeys})) AS v";
        _orderByKeys = string.Join(", ", _keys.Select(k => Ordered("s", k)));
    }

    /// <summary>The table.</summary>
    public SqlServerTableName Table { get; }

    /// <summary>Key columns in key order.</summary>
    public IReadOnlyList<KeyColumn> Keys => _keys;

    /// <summary>Columns read for a row, key columns first.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>
    /// Net changes after <c>@after</c>: one row per changed key (its key from the change table, its latest version and
    /// operation relative to <c>@after</c>, whether the row exists now, then the current row's columns), in version order.
    /// <c>TOP (@max) WITH TIES</c>: SQL Server gives every row of one transaction the same version, and the caller's
    /// checkpoint is a version, so a batch never ends in the middle of a version (it may exceed <c>@max</c> by the rest of
    /// the last transaction).
    /// </summary>
    public string Changes
    {
        get
        {
            var keys = string.Join(", ", _keys.Select(k => "c." + SqlServerIdentifier.Column(k.Name)));
            var join = string.Join(" AND ", _keys.Select(k => $"s.{SqlServerIdentifier.Column(k.Name)} = c.{SqlServerIdentifier.Column(k.Name)}"));
            return $"""
                SELECT TOP (@max) WITH TIES {keys}, c.SYS_CHANGE_VERSION, c.SYS_CHANGE_OPERATION,
                  CASE WHEN s.{SqlServerIdentifier.Column(_keys[0].Name)} IS NULL THEN 0 ELSE 1 END, {_selectColumns}
                FROM CHANGETABLE(CHANGES {Table.Quoted}, @after) AS c
                LEFT JOIN {Table.Quoted} AS s ON {join}
                ORDER BY c.SYS_CHANGE_VERSION
                """;
        }
    }

    /// <summary>Rows in the table.</summary>
    public string Count => $"SELECT COUNT_BIG(*) FROM {Table.Quoted}";

    /// <summary>Up to <c>@n</c> rows (columns, then version, 0 when none) after the key <c>@k0…</c> (when <paramref name="afterKey"/>), in key order.</summary>
    /// <param name="afterKey">Whether the statement starts after a key.</param>
    public string SnapshotBatch(bool afterKey) => $"""
        SELECT TOP (@n) {_selectColumns}, COALESCE(v.SYS_CHANGE_VERSION, 0)
        FROM {Table.Quoted} AS s
        {_versionApply}
        {(afterKey ? "WHERE " + AfterKeyPredicate("s") : string.Empty)}
        ORDER BY {_orderByKeys}
        """;

    /// <summary>Up to <c>@n</c> (key columns, version) after the key <c>@k0…</c> (when <paramref name="afterKey"/>), in key order.</summary>
    /// <param name="afterKey">Whether the statement starts after a key.</param>
    public string Versions(bool afterKey) => $"""
        SELECT TOP (@n) {string.Join(", ", _keys.Select(k => "s." + SqlServerIdentifier.Column(k.Name)))}, COALESCE(v.SYS_CHANGE_VERSION, 0)
        FROM {Table.Quoted} AS s
        {_versionApply}
        {(afterKey ? "WHERE " + AfterKeyPredicate("s") : string.Empty)}
        ORDER BY {_orderByKeys}
        """;

    /// <summary>One row (columns, then version) by its key <c>@k0…</c>.</summary>
    public string Get => $"""
        SELECT {_selectColumns}, COALESCE(v.SYS_CHANGE_VERSION, 0)
        FROM {Table.Quoted} AS s
        {_versionApply}
        WHERE {string.Join(" AND ", _keys.Select((k, i) => $"s.{SqlServerIdentifier.Column(k.Name)} = {KeyParameter(i)}"))}
        """;

    /// <summary>
    /// The <see cref="QuickDigest"/> of the first <c>@size</c> keys after <c>@after</c> (when <paramref name="after"/>) up to
    /// <c>@to</c> (when <paramref name="to"/>): count, digest sum and last key, in one aggregate. Only for a single integer key.
    /// </summary>
    /// <param name="after">Whether the segment has a lower bound.</param>
    /// <param name="to">Whether the segment has an upper bound.</param>
    public string QuickDigestSegment(bool after, bool to)
    {
        if (_keys is not [{ Kind: KeyKind.Integer } key])
        {
            throw new InvalidOperationException("Quick digests are computed in SQL only for a single integer key.");
        }

        var k = "CAST(s." + SqlServerIdentifier.Column(key.Name) + " AS bigint)";
        var conditions = new List<string>(2);
        if (after)
        {
            conditions.Add($"s.{SqlServerIdentifier.Column(key.Name)} > @after");
        }

        if (to)
        {
            conditions.Add($"s.{SqlServerIdentifier.Column(key.Name)} <= @to");
        }

        return $"""
            SELECT COUNT_BIG(*), COALESCE(SUM({QuickDigest.FromMixSql("d.x")}), 0), MAX(d.k)
            FROM (SELECT TOP (@size) {k} AS k, {QuickDigest.MixSql(k, "COALESCE(v.SYS_CHANGE_VERSION, 0)")} AS x
                  FROM {Table.Quoted} AS s
                  {_versionApply}
                  {(conditions.Count > 0 ? "WHERE " + string.Join(" AND ", conditions) : string.Empty)}
                  ORDER BY s.{SqlServerIdentifier.Column(key.Name)}) AS d
            """;
    }

    /// <summary>The minimum valid version of the table.</summary>
    public SqlStatement MinValidVersionStatement() => new(MinValidVersion, [TableParameter()]);

    /// <summary>The table's columns.</summary>
    public static SqlStatement TableColumnsStatement(SqlServerTableName table) => new(TableColumns, [TableParameter(table)]);

    /// <summary><see cref="Changes"/> with its parameters.</summary>
    /// <param name="afterVersion">Last version applied.</param>
    /// <param name="max">Batch size.</param>
    public SqlStatement ChangesStatement(long afterVersion, int max) => new(Changes,
        [new SqlParameter("@after", SqlDbType.BigInt) { Value = afterVersion }, new SqlParameter("@max", SqlDbType.Int) { Value = max }]);

    /// <summary><see cref="SnapshotBatch"/> with its parameters.</summary>
    /// <param name="afterKey">Last key read, or null.</param>
    /// <param name="n">Rows.</param>
    public SqlStatement SnapshotBatchStatement(SourceKey? afterKey, int n) =>
        new(SnapshotBatch(afterKey is not null), [new SqlParameter("@n", SqlDbType.Int) { Value = n }, .. KeyParameters(afterKey)]);

    /// <summary><see cref="Versions"/> with its parameters.</summary>
    /// <param name="afterKey">Last key read, or null.</param>
    /// <param name="n">Entries.</param>
    public SqlStatement VersionsStatement(SourceKey? afterKey, int n) =>
        new(Versions(afterKey is not null), [new SqlParameter("@n", SqlDbType.Int) { Value = n }, .. KeyParameters(afterKey)]);

    /// <summary><see cref="Get"/> with its parameters.</summary>
    /// <param name="key">The key.</param>
    public SqlStatement GetStatement(SourceKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new(Get, [.. KeyParameters(key)]);
    }

    /// <summary><see cref="QuickDigestSegment"/> with its parameters.</summary>
    /// <param name="after">Exclusive lower bound, or null.</param>
    /// <param name="size">Keys per segment.</param>
    /// <param name="to">Inclusive upper bound, or null.</param>
    public SqlStatement QuickDigestStatement(long? after, int size, long? to)
    {
        var parameters = new List<SqlParameter> { new("@size", SqlDbType.Int) { Value = size } };
        if (after is { } a)
        {
            parameters.Add(new SqlParameter("@after", SqlDbType.BigInt) { Value = a });
        }

        if (to is { } t)
        {
            parameters.Add(new SqlParameter("@to", SqlDbType.BigInt) { Value = t });
        }

        return new(QuickDigestSegment(after is not null, to is not null), parameters);
    }

    /// <summary>The parameters of a key's values (<c>@k0</c>…), typed; none for a null key.</summary>
    /// <param name="key">The key, or null.</param>
    public IEnumerable<SqlParameter> KeyParameters(SourceKey? key)
    {
        if (key is null)
        {
            yield break;
        }

        var values = key.Values();
        if (values.Count != _keys.Length)
        {
            throw new ArgumentException($"The key {key} has {values.Count} value(s); the table's key has {_keys.Length}.", nameof(key));
        }

        for (var i = 0; i < values.Count; i++)
        {
            var name = KeyParameter(i);
            yield return values[i] switch
            {
                long l => new SqlParameter(name, SqlDbType.BigInt) { Value = l },
                string s => new SqlParameter(name, SqlDbType.NVarChar, s.Length <= 4000 ? 4000 : -1) { Value = s },
                decimal d => new SqlParameter(name, SqlDbType.Decimal) { Value = d },
                bool b => new SqlParameter(name, SqlDbType.Bit) { Value = b },
                _ => throw new ArgumentException($"The key {key} has a value of a type keys cannot have.", nameof(key)),
            };
        }
    }

    /// <summary>The parameter <c>@table</c>: the quoted two-part name, for <c>OBJECT_ID</c>.</summary>
    public SqlParameter TableParameter() => TableParameter(Table);

    private static SqlParameter TableParameter(SqlServerTableName table) => new("@table", SqlDbType.NVarChar, 300) { Value = table.Quoted };

    /// <summary>
    /// Keyset predicate "key after (<c>@k0</c>, <c>@k1</c>, …)" in key order, expanded for SQL Server (which has no
    /// row-value comparison): <c>(a &gt; @k0) OR (a = @k0 AND b &gt; @k1) OR …</c>, text columns under <see cref="BinaryCollation"/>.
    /// </summary>
    /// <param name="alias">Table alias.</param>
    public string AfterKeyPredicate(string alias)
    {
        var terms = new List<string>(_keys.Length);
        for (var i = 0; i < _keys.Length; i++)
        {
            var term = new StringBuilder("(");
            for (var j = 0; j < i; j++)
            {
                term.Append(CultureInfo.InvariantCulture, $"{Ordered(alias, _keys[j])} = {KeyParameter(j)} AND ");
            }

            term.Append(CultureInfo.InvariantCulture, $"{Ordered(alias, _keys[i])} > {KeyParameter(i)})");
            terms.Add(term.ToString());
        }

        return terms.Count == 1 ? terms[0] : "(" + string.Join(" OR ", terms) + ")";
    }

    /// <summary>The name of the parameter of the key's <paramref name="index"/>-th value.</summary>
    /// <param name="index">Key column index.</param>
    public static string KeyParameter(int index) => string.Create(CultureInfo.InvariantCulture, $"@k{index}");

    private static string Ordered(string alias, KeyColumn key) =>
        key.Kind == KeyKind.Text
            ? $"{alias}.{SqlServerIdentifier.Column(key.Name)} COLLATE {BinaryCollation}"
            : $"{alias}.{SqlServerIdentifier.Column(key.Name)}";
}
