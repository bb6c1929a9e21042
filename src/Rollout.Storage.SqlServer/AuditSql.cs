using System.Data;
using Microsoft.Data.SqlClient;
using Rollout.Core.Reconciliation;

namespace Rollout.Storage.SqlServer;

/// <summary>The T-SQL of the reconciliation audit (fixed table names; every value a parameter).</summary>
internal static class AuditSql
{
    public const string RunColumns = "id, feature, depth, mode, started, ended, range_from, range_to, last_key, status, compared, missing, extra, divergent, stale, target_ahead, untranslatable, repaired, flagged, fetched, target_rows";

    private const string Binary = "COLLATE " + SourceTableSql.BinaryCollation;

    public static SqlStatement UnfinishedRun(string feature) => new(
        $"SELECT TOP (1) {RunColumns} FROM {SqlServerSchema.ReconcileRunsTable} WHERE feature {Binary} = @feature AND status <> N'Completed' ORDER BY id DESC",
        [Feature(feature)]);

    public static SqlStatement GetRun(string feature, long runId) => new(
        $"SELECT {RunColumns} FROM {SqlServerSchema.ReconcileRunsTable} WHERE id = @id AND feature {Binary} = @feature",
        [Feature(feature), new SqlParameter("@id", SqlDbType.BigInt) { Value = runId }]);

    public static SqlStatement ListRuns(string feature, int max) => new(
        $"SELECT TOP (@max) {RunColumns} FROM {SqlServerSchema.ReconcileRunsTable} WHERE feature {Binary} = @feature ORDER BY id DESC",
        [Feature(feature), new SqlParameter("@max", SqlDbType.Int) { Value = max }]);

    public static SqlStatement StartRun(ReconcileRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new($"""
            INSERT INTO {SqlServerSchema.ReconcileRunsTable} (feature, depth, mode, started, range_from, range_to, last_key, status)
            OUTPUT INSERTED.id
            VALUES (@feature, @depth, @mode, @started, @from, @to, @last, N'Running');
            """,
            [Feature(run.Feature), Text("@depth", run.Depth.ToString(), 16), Text("@mode", run.Mode.ToString(), 16), Time("@started", run.Started),
             Long("@from", run.From?.Text), Long("@to", run.To?.Text), Long("@last", run.LastKey?.Text)]);
    }

    /// <summary>
    /// The run whose records carry a run's first reports forward: the feature's last earlier whole-table run of the same
    /// depth (a quick run cannot see divergent content; a ranged run did not look at the other keys). Read once per batch
    /// of keys (a seek on the runs' feature index); null when there is none.
    /// </summary>
    public static SqlStatement PreviousRun(long runId) => new($"""
        SELECT MAX(pr.id) FROM {SqlServerSchema.ReconcileRunsTable} r
        JOIN {SqlServerSchema.ReconcileRunsTable} pr ON pr.feature = r.feature AND pr.id < r.id AND pr.depth = r.depth
          AND pr.range_from IS NULL AND pr.range_to IS NULL
        WHERE r.id = @run
        """, [Run(runId)]);

    /// <summary>
    /// One affected key of a run: updated when the run already recorded the key (a resumed segment), else inserted with
    /// <c>first_seen</c> carried over from <paramref name="previousRun"/> (<see cref="PreviousRun"/>) when that run reported
    /// the key too (a seek on the keys' primary key), else its own time. Run in a transaction.
    /// </summary>
    public static SqlStatement RecordKey(long runId, long? previousRun, AuditedKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new($"""
            UPDATE {SqlServerSchema.ReconcileKeysTable} WITH (UPDLOCK, HOLDLOCK)
              SET kind = @kind, action = @action, source_version = @sv, target_version = @tv, before_hash = @before, after_hash = @after, at = @at, detail = @detail
              WHERE run_id = @run AND key_hash = @key_hash;
            IF @@ROWCOUNT = 0
              INSERT INTO {SqlServerSchema.ReconcileKeysTable} (run_id, key_hash, source_key, sort_key, kind, action, source_version, target_version, before_hash, after_hash, at, detail, first_seen)
                VALUES (@run, @key_hash, @key, @sort, @kind, @action, @sv, @tv, @before, @after, @at, @detail,
                  COALESCE((
                    SELECT COALESCE(p.first_seen, p.at) FROM {SqlServerSchema.ReconcileKeysTable} p
                    WHERE p.run_id = @previous AND p.key_hash = @key_hash AND p.action IN (N'Flag', N'Report')), @at));
            """,
            [Run(runId), Version("@previous", previousRun), new SqlParameter("@key_hash", SqlDbType.Binary, 32) { Value = DeadLetterSql.Hash(key.Key) }, Long("@key", key.Key.Text),
             new SqlParameter("@sort", SqlDbType.VarBinary, -1) { Value = key.Key.Sort }, Text("@kind", key.Kind.ToString(), 16), Text("@action", key.Action.ToString(), 16),
             Version("@sv", key.SourceVersion), Version("@tv", key.TargetVersion), Text("@before", key.BeforeHash?.ToString(), 100), Text("@after", key.AfterHash?.ToString(), 100),
             Time("@at", key.At), Long("@detail", key.Detail)]);
    }

    /// <summary>Status, counts, and (when <paramref name="setLastKey"/>) the resume point; the end time only when given.</summary>
    public static SqlStatement UpdateRun(long runId, string status, string? lastKey, ReconcileCounts c, DateTimeOffset? ended, bool setLastKey)
    {
        ArgumentNullException.ThrowIfNull(c);
        var parameters = new List<SqlParameter>
        {
            Run(runId, "@id"), Text("@status", status, 16), new("@ended", SqlDbType.DateTimeOffset) { Value = ended is { } e ? e : DBNull.Value },
            Count("@compared", c.Compared), Count("@missing", c.Missing), Count("@extra", c.Extra), Count("@divergent", c.Divergent), Count("@stale", c.Stale),
            Count("@ahead", c.TargetAhead), Count("@untranslatable", c.Untranslatable), Count("@repaired", c.Repaired), Count("@flagged", c.Flagged),
            Count("@fetched", c.FetchedInFull), Count("@rows", c.TargetRowsRead),
        };
        if (setLastKey)
        {
            parameters.Add(Long("@last", lastKey));
        }

        return new($"""
            UPDATE {SqlServerSchema.ReconcileRunsTable} SET status = @status, {(setLastKey ? "last_key = @last," : string.Empty)} ended = COALESCE(@ended, ended),
              compared = @compared, missing = @missing, extra = @extra, divergent = @divergent, stale = @stale, target_ahead = @ahead,
              untranslatable = @untranslatable, repaired = @repaired, flagged = @flagged, fetched = @fetched, target_rows = @rows
            WHERE id = @id
            """, parameters);
    }

    public static SqlStatement ListKeys(long runId) => new($"""
        SELECT source_key, sort_key, kind, action, source_version, target_version, before_hash, after_hash, at, detail
        FROM {SqlServerSchema.ReconcileKeysTable} WHERE run_id = @run
        """, [Run(runId)]);

    /// <summary>
    /// When the oldest drift left unresolved by a run (flagged or reported) was first reported in the unbroken series of the
    /// feature's runs that reported it: the run's own records only (each carries <c>first_seen</c>, see <see cref="RecordKey"/>).
    /// </summary>
    public static SqlStatement OldestUnresolvedSince(long runId) => new($"""
        SELECT MIN(COALESCE(first_seen, at)) FROM {SqlServerSchema.ReconcileKeysTable}
        WHERE run_id = @run AND action IN (N'Flag', N'Report')
        """, [Run(runId)]);

    private static SqlParameter Feature(string feature) => Text("@feature", feature ?? throw new ArgumentNullException(nameof(feature)), 63);

    private static SqlParameter Run(long id, string name = "@run") => new(name, SqlDbType.BigInt) { Value = id };

    private static SqlParameter Count(string name, long value) => new(name, SqlDbType.BigInt) { Value = value };

    private static SqlParameter Version(string name, long? value) => new(name, SqlDbType.BigInt) { Value = value is { } v ? v : DBNull.Value };

    private static SqlParameter Time(string name, DateTimeOffset value) => new(name, SqlDbType.DateTimeOffset) { Value = value };

    private static SqlParameter Long(string name, string? value) => new(name, SqlDbType.NVarChar, -1) { Value = (object?)value ?? DBNull.Value };

    private static SqlParameter Text(string name, string? value, int max) =>
        value is null || value.Length <= max
            ? new SqlParameter(name, SqlDbType.NVarChar, max) { Value = (object?)value ?? DBNull.Value }
            : throw new ArgumentException($"{name[1..]} has more than {max} characters.", name[1..]);
}
