using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// The embedded stand-in for the Cosmos DB container and the pipeline's own state, in one SQLite file:
/// a document table per container (source key, id, partition key, source version, content hash, JSON,
/// tombstone flag), checkpoints (with the failed attempts counted at each), leases and dead letters. Writes are version-guarded upserts: a write with a
/// version not newer than the stored one changes nothing, and deletes are versioned tombstones, so an older
/// replayed upsert can never resurrect a deleted row.
/// </summary>
public sealed class SqliteTargetStore : ITargetStore, ICheckpointStore, IDeadLetterStore, ILeaseStore, IBackfillProgressStore, IReconcileTarget
{
    private readonly SqliteDatabase _database;
    private readonly string _documents;
    private readonly TimeProvider _time;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The target database.</param>
    /// <param name="container">Container name from the spec.</param>
    /// <param name="time">Clock for leases and dead letters.</param>
    public SqliteTargetStore(SqliteDatabase database, string container, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(database);
        if (!Identifiers.IsContainerName(container))
        {
            throw new ArgumentException($"'{container}' is not a container name.", nameof(container));
        }

        _database = database;
        _time = time;
        DocumentTable = "documents_" + container.Replace('-', '_');
        _documents = Identifiers.QuoteSqlite(DocumentTable);
    }

    /// <summary>Name of the document table.</summary>
    public string DocumentTable { get; }

    /// <summary>Test hook: called before each write of a batch with its index; throw to simulate a crash mid-batch.</summary>
    public Action<int>? BeforeWrite { get; set; }

    /// <summary>Creates the tables (idempotent).</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        var existing = await SqliteSourceStore.ColumnsAsync(connection, DocumentTable, cancellationToken);
        if (existing.Count > 0 && !(existing.ContainsKey("sort_key") && existing.ContainsKey("quick_digest")))
        {
            throw new InvalidOperationException(
                $"{_database.Path} holds a document table from an earlier version of Rollout (no sort_key or quick_digest column). Move target.db aside and run 'rollout init' and 'rollout backfill' again: the target is rebuilt from the source.");
        }

        SqliteDatabase.Execute(connection, $"""
            CREATE TABLE IF NOT EXISTS {_documents} (
              sort_key BLOB PRIMARY KEY,
              source_key TEXT NOT NULL,
              id TEXT,
              pk TEXT,
              source_version INTEGER NOT NULL,
              hash TEXT,
              json TEXT,
              deleted INTEGER NOT NULL,
              etag INTEGER NOT NULL,
              pipeline_etag INTEGER NOT NULL,
              digest INTEGER NOT NULL,
              quick_digest INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TRIGGER IF NOT EXISTS {Identifiers.QuoteSqlite(DocumentTable + "_etag")} AFTER UPDATE ON {_documents}
              WHEN NEW.etag = OLD.etag
              BEGIN UPDATE {_documents} SET etag = random() WHERE sort_key = NEW.sort_key; END;
            CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS feed_failures (name TEXT PRIMARY KEY, position INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL, last_failed TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS backfills (name TEXT PRIMARY KEY, start_version INTEGER NOT NULL, last_key TEXT, copied INTEGER NOT NULL, completed INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS dead_letters (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              feature TEXT NOT NULL,
              source_key TEXT NOT NULL,
              version INTEGER NOT NULL,
              errors TEXT NOT NULL,
              first_seen TEXT NOT NULL,
              attempts INTEGER NOT NULL,
              resolved_at TEXT
            );
            CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_open ON dead_letters (feature, source_key) WHERE resolved_at IS NULL;
            """);
        await using var transaction = connection.BeginTransaction(deferred: false);
        SqliteDatabase.Execute(connection, BucketsSql(!await BucketsInStepAsync(connection, transaction, cancellationToken)), transaction);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Whether the bucket table exists in this build's form and counts exactly the document table's rows (else set-up sums it again).</summary>
    private async Task<bool> BucketsInStepAsync(SqliteConnection connection, SqliteTransaction transaction, CancellationToken cancellationToken)
    {
        if (!(await SqliteSourceStore.ColumnsAsync(connection, DocumentTable + "__qd", cancellationToken)).ContainsKey("r"))
        {
            return false;
        }

        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT (SELECT COALESCE(SUM(r), 0) FROM {Identifiers.QuoteSqlite(DocumentTable + "__qd")}) = (SELECT COUNT(*) FROM {_documents})";
        return (long)(await command.ExecuteScalarAsync(cancellationToken))! == 1;
    }

    /// <summary>
    /// The quick digests of the live documents by key bucket (<c>&lt;documents&gt;__qd</c>: the first 8 bytes of the sort key,
    /// which for a single integer key is the key's bucket of 256; rows, sum of quick digests, documents whose write marker
    /// moved; and every row, tombstones too), kept by triggers on the document table, so that every write counts, the
    /// pipeline's and any other. Documents whose key is not a single integer are counted under the empty prefix, which turns
    /// bucket comparison off while any is live. Set-up sums the buckets when they are missing or do not count the table's
    /// rows (a write that bypassed the triggers); the triggers are replaced on every set-up.
    /// </summary>
    private string BucketsSql(bool create)
    {
        var buckets = Identifiers.QuoteSqlite(DocumentTable + "__qd");
        static string Prefix(string row) => $"CASE WHEN length({row}.sort_key) = 9 AND substr({row}.sort_key, 1, 1) = x'20' THEN substr({row}.sort_key, 1, 8) ELSE x'' END";
        // r counts every row, tombstones too; n, s and t the live documents.
        static string Sums(string row) =>
            $"1, {row}.deleted = 0, CASE WHEN {row}.deleted = 0 THEN {row}.quick_digest ELSE 0 END, {row}.deleted = 0 AND {row}.etag <> {row}.pipeline_etag";
        string Add(string row) =>
            $"INSERT INTO {buckets} (prefix, r, n, s, t) VALUES ({Prefix(row)}, {Sums(row)})\n"
            + "    ON CONFLICT (prefix) DO UPDATE SET r = r + 1, n = n + excluded.n, s = s + excluded.s, t = t + excluded.t;";
        string Remove(string row) =>
            $"UPDATE {buckets} SET r = r - 1, n = n - ({row}.deleted = 0), s = s - CASE WHEN {row}.deleted = 0 THEN {row}.quick_digest ELSE 0 END, "
            + $"t = t - ({row}.deleted = 0 AND {row}.etag <> {row}.pipeline_etag) WHERE prefix = {Prefix(row)};";
        // The common write, a live document updated in place (the pipeline's upsert), moves its bucket's sums in one statement.
        const string inPlace = "OLD.deleted = 0 AND NEW.deleted = 0 AND OLD.sort_key = NEW.sort_key";
        var move = $"UPDATE {buckets} SET s = s + NEW.quick_digest - OLD.quick_digest, t = t + (NEW.etag <> NEW.pipeline_etag) - (OLD.etag <> OLD.pipeline_etag) WHERE prefix = {Prefix("NEW")};";
        var sql = new StringBuilder()
            .AppendLine(BucketTriggers.Drop(DocumentTable));
        if (create)
        {
            sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"DROP TABLE IF EXISTS {buckets};")
                .AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"CREATE TABLE {buckets} (prefix BLOB PRIMARY KEY, r INTEGER NOT NULL, n INTEGER NOT NULL, s INTEGER NOT NULL, t INTEGER NOT NULL) WITHOUT ROWID;")
                .AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"INSERT INTO {buckets} (prefix, r, n, s, t)")
                .AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"  SELECT {Prefix("d")}, COUNT(*), SUM(d.deleted = 0), SUM(CASE WHEN d.deleted = 0 THEN d.quick_digest ELSE 0 END), SUM(d.deleted = 0 AND d.etag <> d.pipeline_etag) FROM {_documents} d GROUP BY 1;");
        }

        return sql.Append(BucketTriggers.Create(DocumentTable, _documents, Add, Remove, inPlace, move)).ToString();
    }

    /// <inheritdoc />
    public async Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        // One snapshot: the buckets must exist (an older build's set-up made none) and count exactly the table's rows,
        // tombstones included. More means a row left the table without its delete trigger (an INSERT OR REPLACE outside the
        // pipeline replaces a document that way, with recursive_triggers off); then the run compares segments computed from
        // the rows, and the next set-up sums the buckets again.
        await using var snapshot = connection.BeginTransaction(deferred: true);
        if (!await BucketsInStepAsync(connection, snapshot, cancellationToken))
        {
            return null;
        }

        await using var command = connection.CreateCommand();
        command.Transaction = snapshot;
        command.CommandText = $"SELECT prefix, n, s, t FROM {Identifiers.QuoteSqlite(DocumentTable + "__qd")} WHERE n <> 0 ORDER BY prefix LIMIT @max";
        SqliteDatabase.Parameter(command, "@max", (long)maxBuckets + 1);
        var buckets = new List<BucketDigest>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var sort = new byte[9];
        while (reader.Read())
        {
            var prefix = (byte[])reader.GetValue(0);
            if (prefix.Length != 8)
            {
                return null; // A live document whose key is not a single integer: the buckets do not cover the table.
            }

            // The prefix is the sort key of the bucket's first key without its last byte.
            prefix.CopyTo(sort, 0);
            var first = unchecked((long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(sort.AsSpan(1)) ^ 0x8000_0000_0000_0000UL));
            buckets.Add(new BucketDigest(first >> SqliteSourceStore.BucketBits, new RangeDigest(reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3))));
        }

        return buckets.Count > maxBuckets ? null : new QuickBuckets(SqliteSourceStore.BucketBits, buckets);
    }

    /// <inheritdoc />
    public async Task<ApplyResult> ApplyAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writes);
        if (writes.Count == 0)
        {
            return new ApplyResult(0, 0);
        }

        try
        {
            return await ApplyInOneTransactionAsync(writes, cancellationToken);
        }
        catch (SqliteException e) when (IsUnavailable(e))
        {
            // The database file, not the documents: the feed waits for it and dead-letters nothing.
            throw new TargetUnavailableException($"The target database did not take the writes: {e.Message}", e);
        }
    }

    /// <summary>Errors of the database file rather than of a row: locked or busy past the timeout, I/O, full, read-only, unopenable.</summary>
    internal static bool IsUnavailable(SqliteException e) => (e.SqliteErrorCode & 0xFF) is 5 or 6 or 8 or 10 or 13 or 14;

    private async Task<ApplyResult> ApplyInOneTransactionAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"""
            INSERT INTO {_documents} (sort_key, source_key, id, pk, source_version, hash, json, deleted, etag, pipeline_etag, digest, quick_digest)
            VALUES (@sort, @key, @id, @pk, @version, @hash, @json, @deleted, @etag, @etag, @digest, @quick)
            ON CONFLICT (sort_key) DO UPDATE SET
              id = excluded.id, pk = excluded.pk, source_version = excluded.source_version, hash = excluded.hash,
              json = excluded.json, deleted = excluded.deleted, etag = excluded.etag, pipeline_etag = excluded.etag, digest = excluded.digest,
              quick_digest = excluded.quick_digest
            WHERE excluded.source_version > {_documents}.source_version
               OR (@repair = 1 AND excluded.source_version = {_documents}.source_version)
            """;
        var sort = SqliteDatabase.Parameter(command, "@sort", null);
        var key = SqliteDatabase.Parameter(command, "@key", null);
        var etag = SqliteDatabase.Parameter(command, "@etag", null);
        var digest = SqliteDatabase.Parameter(command, "@digest", null);
        var repair = SqliteDatabase.Parameter(command, "@repair", null);
        var quick = SqliteDatabase.Parameter(command, "@quick", null);
        var id = SqliteDatabase.Parameter(command, "@id", null);
        var pk = SqliteDatabase.Parameter(command, "@pk", null);
        var version = SqliteDatabase.Parameter(command, "@version", null);
        var hash = SqliteDatabase.Parameter(command, "@hash", null);
        var json = SqliteDatabase.Parameter(command, "@json", null);
        var deleted = SqliteDatabase.Parameter(command, "@deleted", null);
        command.Prepare();

        var applied = 0;
        for (var i = 0; i < writes.Count; i++)
        {
            BeforeWrite?.Invoke(i);
            var write = writes[i];
            var document = write.Document;
            sort.Value = write.Key.Sort;
            key.Value = write.Key.Text;
            etag.Value = Random.Shared.NextInt64();
            digest.Value = Rollout.Core.Reconciliation.RowDigest.Of(write.SourceVersion, document?.Hash);
            repair.Value = write.Repair ? 1 : 0;
            quick.Value = document is not null && write.Key.TryGetSingleInteger(out var integerKey) ? QuickDigest.Of(integerKey, write.SourceVersion) : 0L;
            id.Value = (object?)document?.Id ?? DBNull.Value;
            pk.Value = (object?)document?.PartitionKey ?? DBNull.Value;
            version.Value = write.SourceVersion;
            hash.Value = document is null ? DBNull.Value : document.Hash.ToString();
            json.Value = document is null ? DBNull.Value : document.JsonText;
            deleted.Value = document is null ? 1 : 0;
            // Synchronous on purpose: SQLite runs in-process, and the async API only adds a task per row.
            cancellationToken.ThrowIfCancellationRequested();
            applied += command.ExecuteNonQuery();
        }

        await transaction.CommitAsync(cancellationToken);
        return new ApplyResult(applied, writes.Count - applied);
    }

    /// <inheritdoc />
    public async Task<TargetDocument?> GetAsync(SourceKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT source_key, id, pk, source_version, hash, json, deleted FROM {_documents} WHERE sort_key = @sort";
        SqliteDatabase.Parameter(command, "@sort", key.Sort);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadDocument(reader) : null;
    }

    /// <summary>Every document (live and tombstones) in key order; for tests and reports.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async IAsyncEnumerable<TargetDocument> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT source_key, id, pk, source_version, hash, json, deleted, sort_key FROM {_documents} ORDER BY sort_key";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (reader.Read())
        {
            yield return ReadDocument(reader) with { Key = SourceKey.FromStore(reader.GetString(0), (byte[])reader.GetValue(7)) };
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TargetEntry>> ReadRangeAsync(SourceKey? after, SourceKey? upTo, bool withHashes, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT source_key, sort_key, source_version, deleted, {(withHashes ? "hash" : "NULL")}, etag <> pipeline_etag FROM {_documents}
            {Range(command, after, upTo)} ORDER BY sort_key
            """;
        var entries = new List<TargetEntry>();
        using var statement = LeanStatement.TryPrepare(command)!;
        while (statement.Read())
        {
            entries.Add(new TargetEntry(
                SourceKey.FromStore(statement.GetString(0), statement.GetBlobSpan(1).ToArray()),
                statement.GetInt64(2),
                statement.GetInt64(3) != 0,
                statement.IsNull(4) ? null : ContentHash.Parse(statement.GetString(4)),
                statement.GetInt64(5) != 0));
        }

        return entries;
    }

    /// <inheritdoc />
    public Task<RangeDigest> QuickDigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken) =>
        SumRangeAsync("quick_digest", after, upTo, cancellationToken);

    /// <inheritdoc />
    public Task<RangeDigest> DigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken) =>
        SumRangeAsync("digest", after, upTo, cancellationToken);

    /// <inheritdoc />
    public Task<UnmatchedEntries> ReadUnmatchedAsync(SourceKey? after, SourceKey? upTo, IReadOnlyList<ExpectedDigest> expected, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(expected);
        // Every entry of the range, column by column: on a connection without the per-call mutex (SqliteDatabase.RentReader).
        using var reader = _database.RentReader();
        using var command = new SqliteCommand();
        command.CommandText = $"""
            SELECT sort_key, digest, deleted, etag <> pipeline_etag, source_key, source_version, hash FROM {_documents}
            {Range(command, after, upTo)} ORDER BY sort_key
            """;
        var matched = new bool[expected.Count];
        var entries = new List<TargetEntry>();
        long read = 0;
        var next = 0;
        // Through the engine's statement API: a matching row costs its sort key bytes (not copied) and three integers.
        using var statement = reader.Prepare(command)!;
        while (statement.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            read++;
            var sort = statement.GetBlobSpan(0);
            while (next < expected.Count && SortKey.Compare(expected[next].Sort, sort) < 0)
            {
                next++;
            }

            var deleted = statement.GetInt64(2) != 0;
            var tampered = statement.GetInt64(3) != 0;
            if (next < expected.Count && SortKey.Compare(expected[next].Sort, sort) == 0)
            {
                if (!deleted && !tampered && statement.GetInt64(1) == expected[next].Digest)
                {
                    matched[next++] = true;
                    continue;
                }

                next++;
            }

            entries.Add(new TargetEntry(
                SourceKey.FromStore(statement.GetString(4), sort.ToArray()),
                statement.GetInt64(5),
                deleted,
                statement.IsNull(6) ? null : ContentHash.Parse(statement.GetString(6)),
                tampered));
        }

        return Task.FromResult(new UnmatchedEntries(matched, entries, read));
    }

    /// <summary>Distinct keys per statement of <see cref="ReadKeysAsync"/> (each one a parameter; SQLite allows 32,766 per statement).</summary>
    internal const int KeysPerStatement = 500;

    /// <inheritdoc />
    /// <remarks>
    /// One statement per <see cref="KeysPerStatement"/> distinct keys, <c>sort_key IN (@k0, @k1, …)</c> with each key's sort form
    /// bound as a parameter: a primary-key seek per key, in one round trip through the engine. Duplicates are read once.
    /// </remarks>
    public async Task<IReadOnlyList<TargetEntry?>> ReadKeysAsync(IReadOnlyList<SourceKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var result = new TargetEntry?[keys.Count];
        var positions = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var distinct = new List<byte[]>();
        for (var i = 0; i < keys.Count; i++)
        {
            var sort = keys[i].Sort;
            var hex = Convert.ToHexString(sort);
            if (!positions.TryGetValue(hex, out var at))
            {
                positions[hex] = at = [];
                distinct.Add(sort);
            }

            at.Add(i);
        }

        if (distinct.Count == 0)
        {
            return result;
        }

        await using var connection = await _database.OpenAsync(cancellationToken);
        foreach (var chunk in distinct.Chunk(KeysPerStatement))
        {
            await using var command = connection.CreateCommand();
            var names = new string[chunk.Length];
            for (var i = 0; i < chunk.Length; i++)
            {
                names[i] = "@k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                SqliteDatabase.Parameter(command, names[i], chunk[i]);
            }

            command.CommandText = $"""
                SELECT source_key, sort_key, source_version, deleted, hash, etag <> pipeline_etag FROM {_documents}
                WHERE sort_key IN ({string.Join(", ", names)})
                """;
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var sort = (byte[])reader.GetValue(1);
                var entry = new TargetEntry(
                    SourceKey.FromStore(reader.GetString(0), sort),
                    reader.GetInt64(2),
                    reader.GetInt64(3) != 0,
                    reader.IsDBNull(4) ? null : ContentHash.Parse(reader.GetString(4)),
                    reader.GetInt64(5) != 0);
                foreach (var i in positions[Convert.ToHexString(sort)])
                {
                    result[i] = entry;
                }
            }
        }

        return result;
    }

    /// <summary>Count, sum of a digest column and moved write markers over the live documents of a key range.</summary>
    private async Task<RangeDigest> SumRangeAsync(string digestColumn, SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        var range = Range(command, after, upTo);
        command.CommandText = $"""
            SELECT COUNT(*), COALESCE(SUM({digestColumn}), 0), COALESCE(SUM(etag <> pipeline_etag), 0) FROM {_documents}
            {(range.Length == 0 ? "WHERE" : range + " AND")} deleted = 0
            """;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        reader.Read();
        return new RangeDigest(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    private static string Range(SqliteCommand command, SourceKey? after, SourceKey? upTo)
    {
        var conditions = new List<string>(2);
        if (after is not null)
        {
            conditions.Add("sort_key > @after");
            SqliteDatabase.Parameter(command, "@after", after.Sort);
        }

        if (upTo is not null)
        {
            conditions.Add("sort_key <= @upTo");
            SqliteDatabase.Parameter(command, "@upTo", upTo.Sort);
        }

        return conditions.Count == 0 ? string.Empty : "WHERE " + string.Join(" AND ", conditions);
    }

    /// <inheritdoc />
    public async Task<long?> GetAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT version FROM checkpoints WHERE name = @name";
        SqliteDatabase.Parameter(command, "@name", name);
        return await command.ExecuteScalarAsync(cancellationToken) is long v ? v : null;
    }

    /// <inheritdoc />
    public async Task SaveAsync(string name, long version, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        // Moving past a position clears the failures counted there.
        command.CommandText = """
            INSERT INTO checkpoints (name, version, updated_at) VALUES (@name, @version, @now)
            ON CONFLICT (name) DO UPDATE SET version = MAX(checkpoints.version, excluded.version), updated_at = excluded.updated_at;
            DELETE FROM feed_failures WHERE name = @name AND position < @version;
            """;
        SqliteDatabase.Parameter(command, "@name", name);
        SqliteDatabase.Parameter(command, "@version", version);
        SqliteDatabase.Parameter(command, "@now", _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        await command.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<FeedFailures?> GetFailuresAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT position, attempts, last_error, last_failed FROM feed_failures WHERE name = @name";
        SqliteDatabase.Parameter(command, "@name", name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new FeedFailures(reader.GetInt64(0), (int)reader.GetInt64(1), reader.GetString(2), DateTimeOffset.Parse(reader.GetString(3), System.Globalization.CultureInfo.InvariantCulture))
            : null;
    }

    /// <inheritdoc />
    public async Task<int> RecordFailureAsync(string name, long position, string error, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO feed_failures (name, position, attempts, last_error, last_failed) VALUES (@name, @position, 1, @error, @now)
            ON CONFLICT (name) DO UPDATE SET
              attempts = CASE WHEN feed_failures.position = excluded.position THEN feed_failures.attempts + 1 ELSE 1 END,
              position = excluded.position, last_error = excluded.last_error, last_failed = excluded.last_failed
            WHERE excluded.position >= feed_failures.position
            RETURNING attempts
            """;
        SqliteDatabase.Parameter(command, "@name", name);
        SqliteDatabase.Parameter(command, "@position", position);
        SqliteDatabase.Parameter(command, "@error", error);
        SqliteDatabase.Parameter(command, "@now", _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        // No row back: the failure is at a position older than the one recorded (a stale instance); it is not counted.
        return await command.ExecuteScalarAsync(cancellationToken) is long attempts ? (int)attempts : 0;
    }

    /// <inheritdoc />
    public async Task AddAsync(IReadOnlyList<DeadLetter> letters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(letters);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        // One open record per key; a replayed batch or a newer failure of the same key updates it.
        command.CommandText = """
            INSERT INTO dead_letters (feature, source_key, version, errors, first_seen, attempts, resolved_at)
            VALUES (@feature, @key, @version, @errors, @now, 1, NULL)
            ON CONFLICT (feature, source_key) WHERE resolved_at IS NULL DO UPDATE SET
              version = MAX(dead_letters.version, excluded.version),
              errors = CASE WHEN excluded.version >= dead_letters.version THEN excluded.errors ELSE dead_letters.errors END
            """;
        var feature = SqliteDatabase.Parameter(command, "@feature", null);
        var key = SqliteDatabase.Parameter(command, "@key", null);
        var version = SqliteDatabase.Parameter(command, "@version", null);
        var errors = SqliteDatabase.Parameter(command, "@errors", null);
        var now = SqliteDatabase.Parameter(command, "@now", null);
        foreach (var letter in letters)
        {
            feature.Value = letter.Feature;
            key.Value = letter.Key.Text;
            version.Value = letter.Version;
            errors.Value = SerializeErrors(letter.Errors);
            now.Value = letter.FirstSeen.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<DeadLetter>> ListAsync(string feature, bool includeResolved, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT id, feature, source_key, version, errors, first_seen, attempts, resolved_at FROM dead_letters
            WHERE feature = @feature {(includeResolved ? string.Empty : "AND resolved_at IS NULL")} ORDER BY id
            """;
        SqliteDatabase.Parameter(command, "@feature", feature);
        var letters = new List<DeadLetter>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            letters.Add(new DeadLetter(
                reader.GetInt64(0),
                reader.GetString(1),
                new SourceKey(reader.GetString(2)),
                reader.GetInt64(3),
                DeserializeErrors(reader.GetString(4)),
                DateTimeOffset.Parse(reader.GetString(5), System.Globalization.CultureInfo.InvariantCulture),
                (int)reader.GetInt64(6),
                reader.IsDBNull(7) ? null : DateTimeOffset.Parse(reader.GetString(7), System.Globalization.CultureInfo.InvariantCulture)));
        }

        return letters;
    }

    /// <inheritdoc />
    public async Task<long> CountOpenAsync(string feature, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        // Answered from the partial index of open records (dead_letters_open).
        command.CommandText = "SELECT COUNT(*) FROM dead_letters WHERE feature = @feature AND resolved_at IS NULL";
        SqliteDatabase.Parameter(command, "@feature", feature);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <inheritdoc />
    public async Task RecordRetryAsync(long id, bool resolved, long appliedVersion, IReadOnlyList<TranslationError> errors, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        // A failure of a newer version recorded meanwhile (by the feed) keeps the record open.
        command.CommandText = resolved
            ? "UPDATE dead_letters SET attempts = attempts + 1, resolved_at = CASE WHEN version <= @applied THEN @now ELSE NULL END WHERE id = @id"
            : "UPDATE dead_letters SET attempts = attempts + 1, errors = @errors WHERE id = @id";
        SqliteDatabase.Parameter(command, "@applied", appliedVersion);
        SqliteDatabase.Parameter(command, "@id", id);
        SqliteDatabase.Parameter(command, "@now", _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        SqliteDatabase.Parameter(command, "@errors", SerializeErrors(errors));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> TryAcquireAsync(string name, string owner, TimeSpan duration, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO leases (name, owner, expires_at_ms) VALUES (@name, @owner, @expires)
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms
            WHERE leases.owner = excluded.owner OR leases.expires_at_ms <= @now
            """;
        SqliteDatabase.Parameter(command, "@name", name);
        SqliteDatabase.Parameter(command, "@owner", owner);
        SqliteDatabase.Parameter(command, "@expires", now + (long)duration.TotalMilliseconds);
        SqliteDatabase.Parameter(command, "@now", now);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    /// <inheritdoc />
    public async Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM leases WHERE name = @name AND owner = @owner";
        SqliteDatabase.Parameter(command, "@name", name);
        SqliteDatabase.Parameter(command, "@owner", owner);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<BackfillProgress?> GetBackfillAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT start_version, last_key, copied, completed FROM backfills WHERE name = @name";
        SqliteDatabase.Parameter(command, "@name", name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new BackfillProgress(reader.GetInt64(0), reader.IsDBNull(1) ? null : new SourceKey(reader.GetString(1)), reader.GetInt64(2), reader.GetInt64(3) != 0)
            : null;
    }

    /// <inheritdoc />
    public async Task SaveBackfillAsync(string name, BackfillProgress progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(progress);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO backfills (name, start_version, last_key, copied, completed) VALUES (@name, @start, @last, @copied, @completed)
            ON CONFLICT (name) DO UPDATE SET start_version = excluded.start_version, last_key = excluded.last_key, copied = excluded.copied, completed = excluded.completed
            """;
        SqliteDatabase.Parameter(command, "@name", name);
        SqliteDatabase.Parameter(command, "@start", progress.StartVersion);
        SqliteDatabase.Parameter(command, "@last", progress.LastKey?.Text);
        SqliteDatabase.Parameter(command, "@copied", progress.Copied);
        SqliteDatabase.Parameter(command, "@completed", progress.Completed ? 1 : 0);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static TargetDocument ReadDocument(SqliteDataReader reader)
    {
        var deleted = reader.GetInt64(6) != 0;
        return new TargetDocument(
            new SourceKey(reader.GetString(0)),
            reader.IsDBNull(1) ? null : reader.GetString(1),
            reader.IsDBNull(2) ? null : reader.GetString(2),
            reader.GetInt64(3),
            reader.IsDBNull(4) ? null : ContentHash.Parse(reader.GetString(4)),
            reader.IsDBNull(5) ? null : reader.GetString(5),
            deleted);
    }

    private static string SerializeErrors(IReadOnlyList<TranslationError> errors) =>
        JsonSerializer.Serialize(errors.Select(e => new StoredError(e.Field, e.Column, e.Kind.ToString(), e.Message)).ToArray(), StorageJsonContext.Default.StoredErrorArray);

    private static TranslationError[] DeserializeErrors(string json) =>
        (JsonSerializer.Deserialize(json, StorageJsonContext.Default.StoredErrorArray) ?? [])
            .Select(e => new TranslationError(e.Field, e.Column, Enum.Parse<TranslationErrorKind>(e.Kind), e.Message)).ToArray();
}

internal sealed record StoredError(string Field, string? Column, string Kind, string Message);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(StoredError[]))]
internal sealed partial class StorageJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
