using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// The legacy store on the embedded default: a table in a SQLite file, with change capture that has the
/// semantics of SQL Server change tracking. Triggers installed by <see cref="InitializeAsync"/> give every
/// insert, update and delete a version from one counter, in the same transaction as the write, and keep one
/// row per key in a side table (<c>&lt;table&gt;__ct</c>: key, version of the latest change, version the row was
/// created at, deleted flag). The feed reads that side table joined to the table, so it returns net changes
/// per key in version order; SQLite serialises writers, so versions follow commit order and a reader never
/// skips a version that commits later.
/// </summary>
/// <remarks>SQLite has no schemas: <c>dbo.Orders</c> in a spec is the table <c>Orders</c> here.</remarks>
public sealed class SqliteSourceStore : IChangeFeed, IReconcileSource
{
    private const string VersionTable = "rollout_version";

    private readonly SqliteDatabase _database;
    private readonly string _table;
    private readonly string _changeTable;
    private readonly string[] _keys;
    private readonly string[] _columns;
    private readonly SourceSchema _schema;
    private readonly string _selectColumns;
    private readonly string _joinOnKeys;
    private readonly string _orderByKeys;
    private readonly string _binaryKeys;
    private bool? _integerKey;
    private bool? _storedDigests;

    /// <summary>Creates the store for one table.</summary>
    /// <param name="database">The source database.</param>
    /// <param name="table">Table name from the spec (a schema prefix is dropped).</param>
    /// <param name="keyColumns">Primary key columns in key order.</param>
    /// <param name="columns">Columns to read (the mapping's source columns); key columns are added.</param>
    public SqliteSourceStore(SqliteDatabase database, string table, IReadOnlyList<string> keyColumns, IReadOnlyList<string> columns)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(keyColumns);
        ArgumentNullException.ThrowIfNull(columns);
        _database = database;
        TableName = table.Split('.')[^1];
        _table = Identifiers.QuoteSqlite(TableName);
        _changeTable = Identifiers.QuoteSqlite(TableName + "__ct");
        _keys = keyColumns.Select(k => Identifiers.IsSqlIdentifier(k) ? k : throw new ArgumentException($"'{k}' is not a plain column name.", nameof(keyColumns))).ToArray();
        _columns = _keys.Concat(columns.Where(c => !_keys.Contains(c, StringComparer.OrdinalIgnoreCase)))
            .Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        _schema = new SourceSchema(_columns);
        _selectColumns = string.Join(", ", _columns.Select(c => "s." + Identifiers.QuoteSqlite(c)));
        // Binary, as the change table's keys are (and SortKey): under the table's NOCASE collation "A" would join "a"'s change
        // row too. Both comparisons are written, so that either table's key index serves the join: the source's (in the
        // column's own collation) when the feed looks rows up by change, the change table's (binary) when a snapshot looks
        // changes up by row; with the binary one alone a NOCASE source was scanned whole on every feed batch.
        _joinOnKeys = string.Join(" AND ", _keys.Select(k =>
            $"s.{Identifiers.QuoteSqlite(k)} = c.{Identifiers.QuoteSqlite(k)} AND s.{Identifiers.QuoteSqlite(k)} = c.{Identifiers.QuoteSqlite(k)} COLLATE BINARY"));
        _orderByKeys = string.Join(", ", _keys.Select(k => "s." + Identifiers.QuoteSqlite(k)));
        // Key order must be byte order (what SortKey encodes), whatever collation the table declares.
        _binaryKeys = string.Join(", ", _keys.Select(k => $"s.{Identifiers.QuoteSqlite(k)} COLLATE BINARY"));
    }

    /// <summary>Creates the store a spec describes.</summary>
    /// <param name="database">The source database.</param>
    /// <param name="spec">Validated spec.</param>
    /// <param name="translator">The spec's compiled mapping (its source columns are read).</param>
    public static SqliteSourceStore For(SqliteDatabase database, RolloutSpec spec, DocumentTranslator translator)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(translator);
        return new SqliteSourceStore(database, spec.Source.Table, spec.Source.Key, translator.SourceColumns);
    }

    /// <summary>The SQLite table name.</summary>
    public string TableName { get; }

    /// <summary>The database.</summary>
    public SqliteDatabase Database => _database;

    /// <summary>
    /// Installs change capture (idempotent): the version counter, the side table and its triggers. The table
    /// must exist with every key and mapped column; otherwise an <see cref="InvalidOperationException"/> says what is missing.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        var existing = await ColumnsAsync(connection, TableName, cancellationToken);
        if (existing.Count == 0)
        {
            throw new InvalidOperationException($"The source table '{TableName}' does not exist in {_database.Path}. Create it, or let 'rollout seed <spec> --rows N' or 'rollout init <spec> --create-table' create it.");
        }

        var missing = _columns.Where(c => !existing.ContainsKey(c)).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidOperationException($"The source table '{TableName}' has no column(s) {string.Join(", ", missing)} that the spec's key or mapping reads. Fix the spec's mapping or the table.");
        }

        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        var keyDefinitions = string.Join(", ", _keys.Select(k => $"{Identifiers.QuoteSqlite(k)} {existing[k]}"));
        var keyList = string.Join(", ", _keys.Select(Identifiers.QuoteSqlite));
        string Row(string prefix) => string.Join(", ", _keys.Select(k => $"{prefix}.{Identifiers.QuoteSqlite(k)}"));
        // Byte for byte: a key whose spelling changed ("A" to "a" under NOCASE) is a key change, as the target sees it.
        var sameKey = string.Join(" AND ", _keys.Select(k => $"OLD.{Identifiers.QuoteSqlite(k)} IS NEW.{Identifiers.QuoteSqlite(k)} COLLATE BINARY"));
        var prefix = Identifiers.QuoteSqlite(TableName + "__ct");
        string Trigger(string suffix) => Identifiers.QuoteSqlite($"{TableName}__ct_{suffix}");
        // A single integer key: each change row also keeps its quick digest and the version it was computed for, so that a
        // quick reconciliation sums stored values instead of evaluating the digest for every row on every run. The reader
        // trusts a stored digest only when it was computed for the row's current version (triggers of an older build that
        // do not maintain it leave it stale, and then it is computed again). Other keys store nothing.
        var integerKey = _keys.Length == 1 && existing[_keys[0]].Contains("INT", StringComparison.OrdinalIgnoreCase);
        var digestColumns = integerKey ? ", digest, digest_of" : string.Empty;
        string Digest(string row) => integerKey ? $", {QuickDigest.Sql($"{row}.{Identifiers.QuoteSqlite(_keys[0])}", "v")}, v" : string.Empty;
        var setDigest = integerKey ? ", digest = excluded.digest, digest_of = excluded.digest_of" : string.Empty;
        var sql = new StringBuilder()
            .AppendLine(SqliteRolloutStore.VersionTableDdl)
            .AppendLine(CultureInfo.InvariantCulture, $"CREATE TABLE IF NOT EXISTS {_changeTable} ({keyDefinitions}, version INTEGER NOT NULL, created_version INTEGER, deleted INTEGER NOT NULL, PRIMARY KEY ({keyList}));")
            .AppendLine(CultureInfo.InvariantCulture, $"CREATE INDEX IF NOT EXISTS {Identifiers.QuoteSqlite(TableName + "__ct_version")} ON {_changeTable} (version);")
            .Append(integerKey ? DigestColumnsSql(await ColumnsAsync(connection, TableName + "__ct", cancellationToken)) : string.Empty)
            .Append(integerKey ? BucketsSql((await ColumnsAsync(connection, TableName + "__qd", cancellationToken)).Count == 0) : string.Empty)
            // The triggers are replaced on every set-up (in this transaction), so a data folder made by an older build gets
            // the current ones (they hold no state). Insert: the row is (re)created at this version.
            .AppendLine(CultureInfo.InvariantCulture, $"""
                DROP TRIGGER IF EXISTS {Trigger("ins")};
                CREATE TRIGGER {Trigger("ins")} AFTER INSERT ON {_table} BEGIN
                  UPDATE {VersionTable} SET v = v + 1 WHERE id = 1;
                  INSERT INTO {prefix} ({keyList}, version, created_version, deleted{digestColumns})
                    SELECT {Row("NEW")}, v, v, 0{Digest("NEW")} FROM {VersionTable} WHERE id = 1
                    ON CONFLICT ({keyList}) DO UPDATE SET version = excluded.version, created_version = excluded.created_version, deleted = 0{setDigest};
                END;
                """)
            // Update: same key keeps its creation version; a changed key deletes the old key and creates the new one.
            .AppendLine(CultureInfo.InvariantCulture, $"""
                DROP TRIGGER IF EXISTS {Trigger("upd")};
                CREATE TRIGGER {Trigger("upd")} AFTER UPDATE ON {_table} BEGIN
                  UPDATE {VersionTable} SET v = v + 1 WHERE id = 1;
                  INSERT INTO {prefix} ({keyList}, version, created_version, deleted{digestColumns})
                    SELECT {Row("OLD")}, v, NULL, 1{Digest("OLD")} FROM {VersionTable} WHERE id = 1 AND NOT ({sameKey})
                    ON CONFLICT ({keyList}) DO UPDATE SET version = excluded.version, deleted = 1{setDigest};
                  -- The new key gets a version of its own: no two change rows share a version, so a batch
                  -- boundary can never fall between them (the feed's cursor is the version).
                  UPDATE {VersionTable} SET v = v + 1 WHERE id = 1 AND NOT ({sameKey});
                  INSERT INTO {prefix} ({keyList}, version, created_version, deleted{digestColumns})
                    SELECT {Row("NEW")}, v, CASE WHEN {sameKey} THEN NULL ELSE v END, 0{Digest("NEW")} FROM {VersionTable} WHERE id = 1
                    ON CONFLICT ({keyList}) DO UPDATE SET version = excluded.version,
                      created_version = CASE WHEN {prefix}.deleted = 1 OR excluded.created_version IS NOT NULL THEN excluded.version ELSE {prefix}.created_version END,
                      deleted = 0{setDigest};
                END;
                """)
            .AppendLine(CultureInfo.InvariantCulture, $"""
                DROP TRIGGER IF EXISTS {Trigger("del")};
                CREATE TRIGGER {Trigger("del")} AFTER DELETE ON {_table} BEGIN
                  UPDATE {VersionTable} SET v = v + 1 WHERE id = 1;
                  INSERT INTO {prefix} ({keyList}, version, created_version, deleted{digestColumns})
                    SELECT {Row("OLD")}, v, NULL, 1{Digest("OLD")} FROM {VersionTable} WHERE id = 1
                    ON CONFLICT ({keyList}) DO UPDATE SET version = excluded.version, deleted = 1{setDigest};
                END;
                """)
            .ToString();
        SqliteDatabase.Execute(connection, sql, transaction);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Key bits per bucket of the maintained quick digests (<see cref="QuickBucketsAsync"/>): 256 keys a bucket.</summary>
    internal const int BucketBits = 8;

    /// <summary>
    /// The quick digests by key bucket (<c>&lt;table&gt;__qd</c>: bucket, rows, digest sum), kept by triggers on the change table,
    /// which every write to the table reaches through change capture: a change row that is live counts in its key's bucket
    /// with the digest of its version. The first set-up of this build also gives every row that has no change row yet (rows
    /// that predate change capture) one at version 0, the version every reader already gives them, so that the change table
    /// has a live row for every row of the table and the buckets cover the table; then it sums the buckets once (about a
    /// second per million rows). The triggers are replaced on every set-up.
    /// </summary>
    private string BucketsSql(bool create)
    {
        var buckets = Identifiers.QuoteSqlite(TableName + "__qd");
        var key = Identifiers.QuoteSqlite(_keys[0]);
        // Only integer keys are bucketed: a text value in an INTEGER column (SQLite keeps it as text) is left out, so the
        // buckets count fewer rows than the table and QuickBucketsAsync declines them.
        string Live(string row) => $"{row}.deleted = 0 AND typeof({row}.{key}) = 'integer'";
        string Add(string row) =>
            $"INSERT INTO {buckets} (bucket, n, s) SELECT {row}.{key} >> {BucketBits}, 1, {QuickDigest.Sql($"{row}.{key}", $"{row}.version")} WHERE {Live(row)}\n"
            + "    ON CONFLICT (bucket) DO UPDATE SET n = n + 1, s = s + excluded.s;";
        string Remove(string row) =>
            $"UPDATE {buckets} SET n = n - 1, s = s - {QuickDigest.Sql($"{row}.{key}", $"{row}.version")} WHERE bucket = {row}.{key} >> {BucketBits} AND {Live(row)};";
        // The common change, a live row updated in place, moves its bucket's sum in one statement.
        var inPlace = $"{Live("OLD")} AND {Live("NEW")} AND OLD.{key} = NEW.{key}";
        var move = $"UPDATE {buckets} SET s = s + {QuickDigest.Sql($"NEW.{key}", "NEW.version")} - {QuickDigest.Sql($"OLD.{key}", "OLD.version")} WHERE bucket = NEW.{key} >> {BucketBits};";
        var sql = new StringBuilder()
            .AppendLine(BucketTriggers.Drop(TableName));
        if (create)
        {
            sql.AppendLine(CultureInfo.InvariantCulture, $"CREATE TABLE {buckets} (bucket INTEGER PRIMARY KEY, n INTEGER NOT NULL, s INTEGER NOT NULL);")
                .AppendLine(CultureInfo.InvariantCulture, $"INSERT INTO {_changeTable} ({key}, version, created_version, deleted, digest, digest_of)")
                .AppendLine(CultureInfo.InvariantCulture, $"  SELECT s.{key}, 0, NULL, 0, {QuickDigest.Sql($"s.{key}", "0")}, 0 FROM {_table} s")
                .AppendLine(CultureInfo.InvariantCulture, $"  WHERE NOT EXISTS (SELECT 1 FROM {_changeTable} c WHERE {_joinOnKeys});")
                .AppendLine(CultureInfo.InvariantCulture, $"INSERT INTO {buckets} (bucket, n, s)")
                .AppendLine(CultureInfo.InvariantCulture, $"  SELECT c.{key} >> {BucketBits}, COUNT(*), SUM({QuickDigest.Sql($"c.{key}", "c.version")}) FROM {_changeTable} c WHERE {Live("c")} GROUP BY 1;");
        }

        return sql.Append(BucketTriggers.Create(TableName, _changeTable, Add, Remove, inPlace, move)).ToString();
    }

    /// <summary>
    /// The change table's stored digest columns, for a table made by an older build: added, and filled for every row (once
    /// per million rows about a second). A set-up that finds them does nothing more: a digest left stale since (by an
    /// older build's triggers) is computed by the reader, which never trusts it.
    /// </summary>
    private string DigestColumnsSql(Dictionary<string, string> changeColumns)
    {
        if (changeColumns.ContainsKey("digest_of"))
        {
            return string.Empty;
        }

        var key = $"{_changeTable}.{Identifiers.QuoteSqlite(_keys[0])}";
        var addDigest = changeColumns.ContainsKey("digest") ? string.Empty : $"ALTER TABLE {_changeTable} ADD COLUMN digest INTEGER;\n";
        return addDigest
            + $"ALTER TABLE {_changeTable} ADD COLUMN digest_of INTEGER;\n"
            + $"UPDATE {_changeTable} SET digest = {QuickDigest.Sql(key, "version")}, digest_of = version;\n";
    }

    /// <inheritdoc />
    public async Task<long> GetCurrentVersionAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT v FROM {VersionTable} WHERE id = 1";
        return await command.ExecuteScalarAsync(cancellationToken) is long v ? v : 0;
    }

    /// <summary>The feed's query: changes after @after in version order, each joined to its row (by the source's key index).</summary>
    internal string ChangesSql => $"""
        SELECT {string.Join(", ", _keys.Select(k => "c." + Identifiers.QuoteSqlite(k)))}, c.version, c.created_version, c.deleted, s.{Identifiers.QuoteSqlite(_keys[0])} IS NOT NULL AS present, {_selectColumns}
        FROM {_changeTable} c LEFT JOIN {_table} s ON {_joinOnKeys}
        WHERE c.version > @after ORDER BY c.version LIMIT @max
        """;

    /// <inheritdoc />
    public async Task<IReadOnlyList<SourceChange>> ReadChangesAsync(long afterVersion, int maxChanges, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = ChangesSql;
        SqliteDatabase.Parameter(command, "@after", afterVersion);
        SqliteDatabase.Parameter(command, "@max", maxChanges);
        var changes = new List<SourceChange>(Math.Min(maxChanges, 65_536));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var k = _keys.Length;
        // Synchronous reads on purpose: SQLite runs in-process, and the async API only adds a task per row.
        while (reader.Read())
        {
            var key = ReadKey(reader, 0);
            var version = reader.GetInt64(k);
            var created = reader.IsDBNull(k + 1) ? (long?)null : reader.GetInt64(k + 1);
            var deleted = reader.GetInt64(k + 2) != 0 || reader.GetInt64(k + 3) == 0;
            if (deleted)
            {
                changes.Add(new SourceChange(key, version, ChangeOperation.Delete, null));
                continue;
            }

            var operation = created is { } c && c > afterVersion ? ChangeOperation.Insert : ChangeOperation.Update;
            changes.Add(new SourceChange(key, version, operation, ReadRow(reader, k + 4)));
        }

        return changes;
    }

    /// <inheritdoc />
    public async Task<long> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {_table}";
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<SnapshotRow>> ReadBatchAsync(SourceKey? afterKey, int batchSize, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        SnapshotBatch(command, afterKey, null, batchSize);
        return await ReadSnapshotRowsAsync(command, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The rows of <see cref="ReadBatchAsync"/>, hashed where the engine's statement holds them: integers and UTF-8 text are
    /// converted in place, so a row costs no boxed value and no decoded string (building <see cref="SourceRow"/>s only to
    /// hash them was about half the cost of a deep run). Hashing is then most of the cost and rows are independent: a batch
    /// of at least <see cref="SplitHashingMinimum"/> rows is read in two halves on two connections at once, split at the
    /// key half-way (a key-only query). Entries carry no row; a repair reads its row again.
    /// </remarks>
    public async Task<IReadOnlyList<SourceEntry>> ReadHashesAsync(SourceKey? after, int max, DocumentTranslator translator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(translator);
        if (max >= SplitHashingMinimum && Environment.ProcessorCount > 1 && await KeyAtAsync(after, max / 2 - 1, cancellationToken) is { } middle)
        {
            AfterSplit?.Invoke();
            // The first half is bounded by the middle key: rows inserted or deleted meanwhile make it longer or shorter,
            // never leave a gap.
            var first = Task.Run(() => HashRange(after, middle, int.MaxValue, translator, cancellationToken), cancellationToken);
            var rest = max - max / 2;
            var second = HashRange(middle, null, rest, translator, cancellationToken);
            if (await first is { } head && second is not null)
            {
                head.AddRange(second);
                // A batch shorter than asked means the end of the table to its reader: while the second half was full, a
                // short total (rows of the first half deleted meanwhile) is topped up from the last key.
                while (second is not null && second.Count == rest && head.Count < max)
                {
                    rest = max - head.Count;
                    second = HashRange(head[^1].Key, null, rest, translator, cancellationToken);
                    head.AddRange(second ?? []);
                }

                // Rows inserted into the first half meanwhile: no more than asked (the next batch starts after the last).
                return head.Count > max ? head.GetRange(0, max) : head;
            }
        }
        else if (HashRange(after, null, max, translator, cancellationToken) is { } entries)
        {
            return entries;
        }

        // A key the engine's statement API does not bind: rows as objects, hashed on every core.
        return await SourceHashing.ReadAndHashAsync(this, after, max, translator, cancellationToken);
    }

    /// <summary>Batches of at least this many rows are hashed in two halves at once (<see cref="ReadHashesAsync"/>).</summary>
    internal const int SplitHashingMinimum = 2048;

    /// <summary>Tests: runs between choosing a split batch's middle key and reading its halves (a concurrent writer's moment).</summary>
    internal Action? AfterSplit { get; set; }

    /// <summary>The key <paramref name="offset"/> rows past <paramref name="after"/> (0: the next one), or null when there are not that many.</summary>
    private async Task<SourceKey?> KeyAtAsync(SourceKey? after, int offset, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {_orderByKeys} FROM {_table} s {AfterKey(command, after)} ORDER BY {_binaryKeys} LIMIT 1 OFFSET @offset";
        SqliteDatabase.Parameter(command, "@offset", offset);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadKey(reader, 0) : null;
    }

    /// <summary>The rows after <paramref name="after"/>, up to <paramref name="upTo"/> and <paramref name="max"/> rows, hashed in place; null when the statement cannot be bound.</summary>
    private List<SourceEntry>? HashRange(SourceKey? after, SourceKey? upTo, int max, DocumentTranslator translator, CancellationToken cancellationToken)
    {
        // A connection of its own without the per-call mutex (see SqliteDatabase.RentReader): this loop reads every column of every row.
        using var reader = _database.RentReader();
        using var command = new SqliteCommand();
        SnapshotBatch(command, after, upTo, max);
        using var statement = reader.Prepare(command);
        if (statement is null)
        {
            return null;
        }

        var entries = new List<SourceEntry>(Math.Min(max, 65_536));
        var k = _keys.Length;
        var key = new object?[k];
        while (statement.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (var i = 0; i < k; i++)
            {
                key[i] = statement.GetValue(i);
            }

            var hash = translator.Hash(statement, _schema, out var errors);
            entries.Add(new SourceEntry(SourceKey.From(key), statement.GetInt64(_columns.Length), hash, errors));
        }

        return entries;
    }

    /// <summary>
    /// Sets <paramref name="command"/> to read up to <paramref name="max"/> rows (every mapped column and the version) after
    /// <paramref name="after"/> and up to <paramref name="upTo"/>, in key order: a batch of <see cref="ReadBatchAsync"/>.
    /// </summary>
    private void SnapshotBatch(SqliteCommand command, SourceKey? after, SourceKey? upTo, int max)
    {
        var where = AfterKey(command, after);
        if (upTo is not null)
        {
            where = (where.Length == 0 ? "WHERE " : where + " AND ") + KeyBound(command, upTo, "<=", "@u");
        }

        command.CommandText = $"""
            SELECT {_selectColumns}, COALESCE(c.version, 0)
            FROM {_table} s LEFT JOIN {_changeTable} c ON {_joinOnKeys}
            {where} ORDER BY {_binaryKeys} LIMIT @n
            """;
        SqliteDatabase.Parameter(command, "@n", max);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<SourceEntry>> ReadVersionsAsync(SourceKey? after, int max, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT {_orderByKeys}, COALESCE(c.version, 0)
            FROM {_table} s LEFT JOIN {_changeTable} c ON {_joinOnKeys}
            {AfterKey(command, after)} ORDER BY {_binaryKeys} LIMIT @n
            """;
        SqliteDatabase.Parameter(command, "@n", max);
        var entries = new List<SourceEntry>(Math.Min(max, 65_536));
        using var lean = LeanStatement.TryPrepare(command);
        if (lean is not null)
        {
            while (lean.Read())
            {
                var values = new object?[_keys.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = lean.GetValue(i);
                }

                entries.Add(new SourceEntry(SourceKey.From(values), lean.GetInt64(_keys.Length)));
            }

            return entries;
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (reader.Read())
        {
            entries.Add(new SourceEntry(ReadKey(reader, 0), reader.GetInt64(_keys.Length)));
        }

        return entries;
    }

    /// <inheritdoc />
    public async Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken)
    {
        if (_keys.Length != 1)
        {
            return null;
        }

        await using var connection = await _database.OpenAsync(cancellationToken);
        if ((await ColumnsAsync(connection, TableName + "__qd", cancellationToken)).Count == 0)
        {
            return null; // Set up by an older build (or not an integer key): the next set-up adds them.
        }

        // One snapshot: the buckets must count exactly the table's rows. More means a row left the table without its delete
        // trigger (SQLite's REPLACE removing a row that conflicts on another unique column, with recursive_triggers off),
        // which change capture and the buckets both missed; fewer, a key that is not an integer. Then the run compares
        // segments computed from the rows, which see both.
        await using var snapshot = connection.BeginTransaction(deferred: true);
        await using var command = connection.CreateCommand();
        command.Transaction = snapshot;
        command.CommandText = $"SELECT bucket, n, s FROM {Identifiers.QuoteSqlite(TableName + "__qd")} WHERE n <> 0 ORDER BY bucket LIMIT @max";
        SqliteDatabase.Parameter(command, "@max", (long)maxBuckets + 1);
        var buckets = new List<BucketDigest>();
        long counted = 0;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (reader.Read())
            {
                buckets.Add(new BucketDigest(reader.GetInt64(0), new RangeDigest(reader.GetInt64(1), reader.GetInt64(2), 0)));
                counted += reader.GetInt64(1);
            }
        }

        if (buckets.Count > maxBuckets)
        {
            return null;
        }

        await using var count = connection.CreateCommand();
        count.Transaction = snapshot;
        count.CommandText = $"SELECT COUNT(*) FROM {_table}";
        return (long)(await count.ExecuteScalarAsync(cancellationToken))! == counted ? new QuickBuckets(BucketBits, buckets) : null;
    }

    /// <inheritdoc />
    public async Task<SegmentDigest?> QuickDigestAsync(SourceKey? after, int size, SourceKey? to, CancellationToken cancellationToken)
    {
        if (_keys.Length != 1)
        {
            return null;
        }

        await using var connection = await _database.OpenAsync(cancellationToken);
        _integerKey ??= (await ColumnsAsync(connection, TableName, cancellationToken)).TryGetValue(_keys[0], out var type)
            && type.Contains("INT", StringComparison.OrdinalIgnoreCase);
        if (_integerKey != true)
        {
            return null;
        }

        var key = _orderByKeys;
        long? afterValue = after is not null && after.TryGetSingleInteger(out var a) ? a : null;
        long? toValue = to is not null && to.TryGetSingleInteger(out var t) ? t : null;
        var lower = afterValue is null ? "1 = 1" : $"{key} > @after";
        var upper = toValue is null ? "1 = 1" : $"{key} <= @to";

        // One pass: the first @size keys of the range in key order, their count, digest sum and last key. A change row's stored
        // digest is used when it was computed for the row's version (set up by this build); otherwise it is computed here.
        _storedDigests ??= (await ColumnsAsync(connection, TableName + "__ct", cancellationToken)).ContainsKey("digest_of");
        var digest = _storedDigests == true
            ? $"CASE WHEN c.digest_of = c.version THEN c.digest ELSE {QuickDigest.Sql(key, "COALESCE(c.version, 0)")} END"
            : QuickDigest.Sql(key, "COALESCE(c.version, 0)");
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT COUNT(*), COALESCE(SUM(x), 0), MAX(k)
            FROM (SELECT {key} AS k, {digest} AS x
                  FROM {_table} s LEFT JOIN {_changeTable} c ON {_joinOnKeys}
                  WHERE {lower} AND {upper} ORDER BY {key} LIMIT @size)
            """;
        SqliteDatabase.Parameter(command, "@after", afterValue);
        SqliteDatabase.Parameter(command, "@to", toValue);
        SqliteDatabase.Parameter(command, "@size", size);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        reader.Read();
        var count = reader.GetInt64(0);
        long? last = reader.IsDBNull(2) ? null : reader.GetInt64(2);
        // Fewer keys than asked for, or the range's upper bound reached: no key of the range follows.
        var isFinal = count < size || (toValue is not null && last == toValue);
        return new SegmentDigest(last is { } l ? SourceKey.From([l]) : null, isFinal, count, reader.GetInt64(1));
    }

    private string AfterKey(SqliteCommand command, SourceKey? afterKey)
    {
        if (afterKey is null)
        {
            return string.Empty;
        }

        return "WHERE " + KeyBound(command, afterKey, ">", "@k");
    }

    /// <summary>The key columns compared with <paramref name="key"/> in byte order (<c>&gt;</c>, <c>&lt;=</c>), its values bound as parameters named <paramref name="prefix"/>0, 1…</summary>
    private string KeyBound(SqliteCommand command, SourceKey key, string comparison, string prefix)
    {
        var values = key.Values();
        for (var i = 0; i < _keys.Length; i++)
        {
            SqliteDatabase.Parameter(command, $"{prefix}{i}", values[i]);
        }

        return _keys.Length == 1
            ? $"{_binaryKeys} {comparison} {prefix}0"
            : $"({_binaryKeys}) {comparison} ({string.Join(", ", _keys.Select((_, i) => $"{prefix}{i}"))})";
    }

    /// <inheritdoc />
    public async Task<SnapshotRow?> GetAsync(SourceKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        var values = key.Values();
        command.CommandText = $"""
            SELECT {_selectColumns}, COALESCE(c.version, 0)
            FROM {_table} s LEFT JOIN {_changeTable} c ON {_joinOnKeys}
            WHERE {string.Join(" AND ", _keys.Select((c, i) => $"s.{Identifiers.QuoteSqlite(c)} = @k{i}"))}
            """;
        for (var i = 0; i < _keys.Length; i++)
        {
            SqliteDatabase.Parameter(command, $"@k{i}", values[i]);
        }

        // The column's collation may match another spelling of the key ("A" for "a"): only the exact key counts.
        var rows = await ReadSnapshotRowsAsync(command, cancellationToken);
        return rows.FirstOrDefault(r => Rollout.Core.DataPath.SortKey.Compare(r.Key.Sort, key.Sort) == 0);
    }

    private async Task<IReadOnlyList<SnapshotRow>> ReadSnapshotRowsAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        if (TryReadSnapshotRowsLean(command, cancellationToken) is { } lean)
        {
            return lean;
        }

        var rows = new List<SnapshotRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var row = ReadRow(reader, 0);
            // The key columns come first: build the key from the values already read.
            var key = SourceKey.From(_keys.Length == 1 ? [row.Values[0]] : row.Values.Take(_keys.Length).ToArray());
            rows.Add(new SnapshotRow(key, reader.GetInt64(_columns.Length), row));
        }

        return rows;
    }

    /// <summary>
    /// The same rows as <see cref="ReadSnapshotRowsAsync"/> through <see cref="LeanStatement"/> (most of the cost of reading
    /// a snapshot is per value: every source row in deep reconciliation and backfill); null when it cannot bind the parameters.
    /// </summary>
    private List<SnapshotRow>? TryReadSnapshotRowsLean(SqliteCommand command, CancellationToken cancellationToken)
    {
        using var statement = LeanStatement.TryPrepare(command);
        if (statement is null)
        {
            return null;
        }

        var rows = new List<SnapshotRow>();
        var k = _keys.Length;
        while (statement.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var values = new object?[_columns.Length];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = statement.GetValue(i);
            }

            // The key columns come first: build the key from the values already read.
            var key = SourceKey.From(k == 1 ? [values[0]] : values.Take(k).ToArray());
            rows.Add(new SnapshotRow(key, statement.GetInt64(_columns.Length), new SourceRow(_schema, values)));
        }

        return rows;
    }

    private SourceKey ReadKey(SqliteDataReader reader, int offset)
    {
        var values = new object?[_keys.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = reader.GetValue(offset + i);
        }

        return SourceKey.From(values);
    }

    private SourceRow ReadRow(SqliteDataReader reader, int offset)
    {
        var values = new object?[_columns.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var value = reader.GetValue(offset + i);
            values[i] = value is DBNull ? null : value;
        }

        return new SourceRow(_schema, values);
    }

    internal static async Task<Dictionary<string, string>> ColumnsAsync(SqliteConnection connection, string table, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, type FROM pragma_table_info(@table)";
        SqliteDatabase.Parameter(command, "@table", table);
        var columns = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var type = reader.GetString(1);
            columns[reader.GetString(0)] = Identifiers.IsSqlIdentifier(type.Replace(' ', '_')) ? type : string.Empty;
        }

        return columns;
    }
}
