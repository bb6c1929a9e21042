using System.Data;
using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;

namespace Rollout.Storage.SqlServer;

/// <summary>The T-SQL of checkpoints and their failure counts, backfill progress, leases and the feed lock (fixed table names; every value a parameter).</summary>
internal static class StateSql
{
    /// <summary>Names compare byte-wise, whatever the database's collation: "Feed" and "feed" are different owners.</summary>
    private const string Binary = "COLLATE " + SourceTableSql.BinaryCollation;

    /// <summary>The server's clock in milliseconds since the Unix epoch: one clock for every instance, so no skew between them.</summary>
    public const string NowMs = "DATEDIFF_BIG(millisecond, '1970-01-01T00:00:00', SYSUTCDATETIME())";

    public static SqlStatement GetCheckpoint(string name) =>
        new($"SELECT version FROM {SqlServerSchema.CheckpointsTable} WHERE name {Binary} = @name", [Name(name)]);

    /// <summary>
    /// Upserts a checkpoint that never moves backwards: one MERGE under HOLDLOCK (a key-range lock, so two first saves of a
    /// name cannot both insert), keeping the higher of the stored and the new version; then clears the failures counted at
    /// positions it has moved past.
    /// </summary>
    public static SqlStatement SaveCheckpoint(string name, long version, DateTimeOffset now) => new($"""
        MERGE {SqlServerSchema.CheckpointsTable} WITH (HOLDLOCK) AS t
        USING (SELECT @name AS name) AS s ON t.name {Binary} = s.name
        WHEN MATCHED THEN UPDATE SET version = CASE WHEN t.version > @version THEN t.version ELSE @version END, updated_at = @now
        WHEN NOT MATCHED THEN INSERT (name, version, updated_at) VALUES (@name, @version, @now);
        DELETE FROM {SqlServerSchema.FeedFailuresTable} WHERE name {Binary} = @name AND position < @version;
        """,
        [Name(name), new SqlParameter("@version", SqlDbType.BigInt) { Value = version }, new SqlParameter("@now", SqlDbType.DateTimeOffset) { Value = now }]);

    public static SqlStatement GetFailures(string name) =>
        new($"SELECT position, attempts, last_error, last_failed FROM {SqlServerSchema.FeedFailuresTable} WHERE name {Binary} = @name", [Name(name)]);

    /// <summary>
    /// Counts a failed attempt at a position in one MERGE under HOLDLOCK (two instances failing at once count two): one more
    /// at the same position, 1 at another. Returns the count.
    /// </summary>
    public static SqlStatement RecordFailure(string name, long position, string error, DateTimeOffset now) => new($"""
        SET NOCOUNT ON;
        MERGE {SqlServerSchema.FeedFailuresTable} WITH (HOLDLOCK) AS f
        USING (SELECT @name AS name) AS s ON f.name {Binary} = s.name
        WHEN MATCHED AND f.position <= @position THEN UPDATE SET attempts = CASE WHEN f.position = @position THEN f.attempts + 1 ELSE 1 END,
          position = @position, last_error = @error, last_failed = @now
        WHEN NOT MATCHED THEN INSERT (name, position, attempts, last_error, last_failed) VALUES (@name, @position, 1, @error, @now)
        OUTPUT inserted.attempts;
        """,
        [Name(name), new SqlParameter("@position", SqlDbType.BigInt) { Value = position },
         new SqlParameter("@error", SqlDbType.NVarChar, 2000) { Value = error.Length <= 2000 ? error : error[..2000] },
         new SqlParameter("@now", SqlDbType.DateTimeOffset) { Value = now }]);

    public static SqlStatement GetBackfill(string name) =>
        new($"SELECT start_version, last_key, copied, completed FROM {SqlServerSchema.BackfillsTable} WHERE name {Binary} = @name", [Name(name)]);

    /// <summary>Upserts a backfill's progress (one MERGE under HOLDLOCK).</summary>
    public static SqlStatement SaveBackfill(string name, BackfillProgress progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        return new($"""
            MERGE {SqlServerSchema.BackfillsTable} WITH (HOLDLOCK) AS t
            USING (SELECT @name AS name) AS s ON t.name {Binary} = s.name
            WHEN MATCHED THEN UPDATE SET start_version = @start, last_key = @last, copied = @copied, completed = @completed
            WHEN NOT MATCHED THEN INSERT (name, start_version, last_key, copied, completed) VALUES (@name, @start, @last, @copied, @completed);
            """,
            [Name(name), new SqlParameter("@start", SqlDbType.BigInt) { Value = progress.StartVersion },
             new SqlParameter("@last", SqlDbType.NVarChar, -1) { Value = (object?)progress.LastKey?.Text ?? DBNull.Value },
             new SqlParameter("@copied", SqlDbType.BigInt) { Value = progress.Copied }, new SqlParameter("@completed", SqlDbType.Bit) { Value = progress.Completed }]);
    }

    /// <summary>
    /// Takes or renews a lease in one statement: the row is updated only when it is ours or expired on the server's clock,
    /// and inserted when there is none (HOLDLOCK makes the check and the write atomic). Returns 1 when the caller holds it.
    /// </summary>
    public static SqlStatement AcquireLease(string name, string owner, TimeSpan duration) => new($"""
        SET NOCOUNT ON;
        DECLARE @now bigint = {NowMs};
        MERGE {SqlServerSchema.LeasesTable} WITH (HOLDLOCK) AS l
        USING (SELECT @name AS name) AS s ON l.name {Binary} = s.name
        WHEN MATCHED AND (l.owner {Binary} = @owner OR l.expires_at_ms <= @now) THEN UPDATE SET owner = @owner, expires_at_ms = @now + @duration_ms
        WHEN NOT MATCHED THEN INSERT (name, owner, expires_at_ms) VALUES (@name, @owner, @now + @duration_ms);
        SELECT @@ROWCOUNT;
        """,
        [Name(name), Owner(owner), new SqlParameter("@duration_ms", SqlDbType.BigInt) { Value = (long)duration.TotalMilliseconds }]);

    public static SqlStatement ReleaseLease(string name, string owner) =>
        new($"DELETE FROM {SqlServerSchema.LeasesTable} WHERE name {Binary} = @name AND owner {Binary} = @owner", [Name(name), Owner(owner)]);

    /// <summary>An exclusive application lock owned by the session (released by <see cref="ReleaseAppLock"/> or when the session ends).</summary>
    public static SqlStatement GetAppLock(string resource, TimeSpan wait) => new("""
        DECLARE @result int;
        EXEC @result = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = @timeout_ms;
        SELECT @result;
        """,
        [Resource(resource), new SqlParameter("@timeout_ms", SqlDbType.Int) { Value = (int)Math.Clamp(wait.TotalMilliseconds, 0, int.MaxValue) }]);

    public static SqlStatement ReleaseAppLock(string resource) =>
        new("EXEC sp_releaseapplock @Resource = @resource, @LockOwner = 'Session';", [Resource(resource)]);

    private static SqlParameter Name(string name) => new("@name", SqlDbType.NVarChar, 200) { Value = Require(name, 200, nameof(name)) };

    private static SqlParameter Owner(string owner) => new("@owner", SqlDbType.NVarChar, 200) { Value = Require(owner, 200, nameof(owner)) };

    private static SqlParameter Resource(string resource) => new("@resource", SqlDbType.NVarChar, 255) { Value = Require(resource, 255, nameof(resource)) };

    private static string Require(string value, int max, string parameter)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, parameter);
        return value.Length <= max ? value : throw new ArgumentException($"At most {max} characters.", parameter);
    }
}
