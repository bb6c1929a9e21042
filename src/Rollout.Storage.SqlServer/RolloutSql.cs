using System.Data;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.SqlClient;
using Rollout.Core.Exposure;
using Rollout.Core.Plan;
using Rollout.Core.Spec;

namespace Rollout.Storage.SqlServer;

/// <summary>The T-SQL of the exposure state and the gate (fixed table names; the source table validated and quoted; every value a parameter).</summary>
internal static class RolloutSql
{
    private const string Binary = "COLLATE " + SourceTableSql.BinaryCollation;

    public static SqlStatement GetState(string feature) =>
        new($"SELECT phase, exposure_buckets, reads, generation FROM {SqlServerSchema.StateTable} WHERE feature {Binary} = @feature", [Feature(feature)]);

    /// <summary>
    /// Sets the state and records the change in the history, in the caller's transaction. Idempotent: setting the state it
    /// already has changes nothing and records nothing (an activity run again after its host died adds no second change).
    /// Returns the generation.
    /// </summary>
    public static SqlStatement SetState(string feature, string phase, ExposureLevel exposure, ReadMode reads, string reason, DateTimeOffset now) => new($"""
        SET NOCOUNT ON;
        DECLARE @changed int;
        UPDATE {SqlServerSchema.StateTable} WITH (UPDLOCK, HOLDLOCK)
          SET phase = @phase, exposure_buckets = @exposure, reads = @reads, generation = generation + 1, updated_at = @now
          WHERE feature {Binary} = @feature
            AND (phase {Binary} <> @phase OR exposure_buckets <> @exposure OR reads {Binary} <> @reads);
        SET @changed = @@ROWCOUNT;
        IF @changed = 0 AND NOT EXISTS (SELECT 1 FROM {SqlServerSchema.StateTable} WITH (UPDLOCK, HOLDLOCK) WHERE feature {Binary} = @feature)
        BEGIN
          INSERT INTO {SqlServerSchema.StateTable} (feature, phase, exposure_buckets, reads, generation, updated_at)
            VALUES (@feature, @phase, @exposure, @reads, 1, @now);
          SET @changed = 1;
        END;
        IF @changed = 1
          INSERT INTO {SqlServerSchema.StateHistoryTable} (feature, phase, exposure_buckets, reads, generation, reason, at)
            SELECT feature, phase, exposure_buckets, reads, generation, @reason, @now FROM {SqlServerSchema.StateTable} WHERE feature {Binary} = @feature;
        SELECT generation FROM {SqlServerSchema.StateTable} WHERE feature {Binary} = @feature;
        """,
        [Feature(feature), Text("@phase", phase, 63), new SqlParameter("@exposure", SqlDbType.Int) { Value = exposure.Buckets },
         Text("@reads", reads.ToString(), 16), Text("@reason", reason, 2000), Now(now)]);

    public static SqlStatement StateHistory(string feature) => new(
        $"SELECT phase, exposure_buckets, reads, generation, reason, at FROM {SqlServerSchema.StateHistoryTable} WHERE feature {Binary} = @feature ORDER BY id",
        [Feature(feature)]);

    /// <summary>The database's change-tracking version when a new-path transaction starts (its own writes will commit above it).</summary>
    public const string VersionBefore = SourceTableSql.CurrentVersion;

    /// <summary>
    /// Inside the new path's transaction: the exposure ledger row, and the subject's write marked pending with the version
    /// the transaction started after (its commit version is not known before it commits).
    /// </summary>
    public static SqlStatement RecordExposure(string feature, string subject, string phase, ExposureLevel exposure, long before, DateTimeOffset now) => new($"""
        INSERT INTO {SqlServerSchema.ExposuresTable} (feature, subject, phase, exposure_buckets, at) VALUES (@feature, @subject, @phase, @exposure, @now);
        MERGE {SqlServerSchema.SubjectWritesTable} WITH (HOLDLOCK) AS w
        USING (SELECT @feature AS feature, @subject AS subject) AS s ON w.feature {Binary} = s.feature AND w.subject {Binary} = s.subject
        WHEN MATCHED THEN UPDATE SET pending_after = CASE WHEN w.pending_after < @before THEN w.pending_after ELSE @before END
        WHEN NOT MATCHED THEN INSERT (feature, subject, version, pending_after) VALUES (@feature, @subject, NULL, @before);
        """,
        [Feature(feature), Subject(subject), Text("@phase", phase, 63), new SqlParameter("@exposure", SqlDbType.Int) { Value = exposure.Buckets },
         new SqlParameter("@before", SqlDbType.BigInt) { Value = before }, Now(now)]);

    /// <summary>
    /// Resolves a pending write and returns the subject's last write version (NULL when it never wrote). The version is the
    /// highest change of the source table since the transaction started: at least the transaction's own commit version when
    /// it wrote the table, and always a version of that table, so the feed's checkpoint reaches it. Run right after the
    /// commit, and again by any read that finds the write still pending (the process died between commit and resolution).
    /// </summary>
    public static SqlStatement ResolveLastWrite(SqlServerTableName sourceTable, string feature, string subject) => new($"""
        SET NOCOUNT ON;
        DECLARE @after bigint = (SELECT pending_after FROM {SqlServerSchema.SubjectWritesTable} WHERE feature {Binary} = @feature AND subject {Binary} = @subject);
        IF @after IS NOT NULL
        BEGIN
          DECLARE @v bigint = (SELECT MAX(c.SYS_CHANGE_VERSION) FROM CHANGETABLE(CHANGES {sourceTable.Quoted}, @after) AS c);
          SET @v = COALESCE(@v, @after);
          UPDATE {SqlServerSchema.SubjectWritesTable}
            SET version = CASE WHEN version > @v THEN version ELSE @v END, pending_after = NULL
            WHERE feature {Binary} = @feature AND subject {Binary} = @subject AND pending_after = @after;
        END;
        SELECT version FROM {SqlServerSchema.SubjectWritesTable} WHERE feature {Binary} = @feature AND subject {Binary} = @subject;
        """,
        [Feature(feature), Subject(subject)]);

    /// <summary>
    /// Appends a journal entry unless the same entry (feature, instance, time, kind, detail, sequence: an activity retried) is
    /// there already; one statement, HOLDLOCK making the check and the insert atomic.
    /// </summary>
    public static SqlStatement AppendJournal(RolloutJournalEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return new($"""
            INSERT INTO {SqlServerSchema.JournalTable} (feature, at, kind, phase, exposure, detail, instance, seq, entry_hash)
              SELECT @feature, @at, @kind, @phase, @exposure, @detail, @instance, @seq, @entry_hash
              WHERE NOT EXISTS (SELECT 1 FROM {SqlServerSchema.JournalTable} WITH (UPDLOCK, HOLDLOCK) WHERE feature {Binary} = @feature AND entry_hash = @entry_hash);
            """,
            [Feature(entry.Feature), new SqlParameter("@at", SqlDbType.DateTimeOffset) { Value = entry.At, Scale = 7 }, Text("@kind", entry.Kind, 64),
             Text("@phase", entry.Phase, 63), new SqlParameter("@exposure", SqlDbType.Decimal) { Value = entry.ExposurePercent, Precision = 9, Scale = 4 },
             new SqlParameter("@detail", SqlDbType.NVarChar, -1) { Value = entry.Detail }, Text("@instance", entry.Instance, 200),
             new SqlParameter("@seq", SqlDbType.BigInt) { Value = entry.Sequence }, new SqlParameter("@entry_hash", SqlDbType.Binary, 32) { Value = EntryHash(entry) }]);
    }

    public static SqlStatement ReadJournal(string feature) => new(
        $"SELECT at, kind, phase, exposure, detail, instance, seq FROM {SqlServerSchema.JournalTable} WHERE feature {Binary} = @feature ORDER BY at, id",
        [Feature(feature)]);

    /// <summary>SHA-256 of the fields that identify an entry, each length-prefixed so that no two entries encode alike.</summary>
    public static byte[] EntryHash(RolloutJournalEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{entry.Feature.Length}:{entry.Feature}|{entry.Instance.Length}:{entry.Instance}|{entry.At.UtcTicks}|{entry.Kind.Length}:{entry.Kind}|{entry.Detail.Length}:{entry.Detail}|{entry.Sequence}");
        return SHA256.HashData(Encoding.UTF8.GetBytes(text));
    }

    public static SqlStatement CountExposures(string feature) => new(
        $"SELECT phase, COUNT_BIG(*) FROM {SqlServerSchema.ExposuresTable} WHERE feature {Binary} = @feature GROUP BY phase", [Feature(feature)]);

    private static SqlParameter Feature(string feature) => Text("@feature", feature, 63);

    private static SqlParameter Subject(string subject) => Text("@subject", subject, 200);

    private static SqlParameter Now(DateTimeOffset now) => new("@now", SqlDbType.DateTimeOffset) { Value = now };

    private static SqlParameter Text(string name, string value, int max)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        return value.Length <= max
            ? new SqlParameter(name, SqlDbType.NVarChar, max) { Value = value }
            : throw new ArgumentException($"{name[1..]} has more than {max} characters.", name[1..]);
    }
}
