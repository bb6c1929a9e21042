using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Plan;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// The rollout's own state in the source database, so that it changes transactionally with the data: the
/// exposure state (phase, exposure, read mode) and its history, the exposure ledger (one row per committed
/// new-path write: subject, phase, exposure), each subject's last written source version, and the journal
/// of the rollout orchestration (phase changes, verdicts, approvals, rollback).
/// </summary>
public sealed class SqliteRolloutStore : IExposureStateStore, IGateStore, IRolloutJournal
{
    internal const string VersionTableDdl = """
        CREATE TABLE IF NOT EXISTS rollout_version (id INTEGER PRIMARY KEY CHECK (id = 1), v INTEGER NOT NULL);
        INSERT OR IGNORE INTO rollout_version (id, v) VALUES (1, 0);
        """;

    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The source database.</param>
    /// <param name="time">Clock.</param>
    public SqliteRolloutStore(SqliteDatabase database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    /// <summary>Creates the tables (idempotent).</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        SqliteDatabase.Execute(connection, VersionTableDdl + """
            CREATE TABLE IF NOT EXISTS rollout_state (
              feature TEXT PRIMARY KEY, phase TEXT NOT NULL, exposure_buckets INTEGER NOT NULL, reads TEXT NOT NULL,
              generation INTEGER NOT NULL, updated_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS rollout_state_history (
              id INTEGER PRIMARY KEY AUTOINCREMENT, feature TEXT NOT NULL, phase TEXT NOT NULL, exposure_buckets INTEGER NOT NULL,
              reads TEXT NOT NULL, generation INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS rollout_exposures (
              id INTEGER PRIMARY KEY AUTOINCREMENT, feature TEXT NOT NULL, subject TEXT NOT NULL, phase TEXT NOT NULL,
              exposure_buckets INTEGER NOT NULL, source_version INTEGER NOT NULL, at TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS rollout_exposures_feature ON rollout_exposures (feature, phase);
            CREATE TABLE IF NOT EXISTS rollout_subject_writes (
              feature TEXT NOT NULL, subject TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (feature, subject));
            CREATE TABLE IF NOT EXISTS rollout_journal (
              id INTEGER PRIMARY KEY AUTOINCREMENT, feature TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, phase TEXT NOT NULL,
              exposure TEXT NOT NULL, detail TEXT NOT NULL, instance TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
              UNIQUE (feature, instance, at, kind, detail, seq));
            """);
    }

    /// <inheritdoc />
    public async Task<ExposureState> GetStateAsync(string feature, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT phase, exposure_buckets, reads, generation FROM rollout_state WHERE feature = @feature";
        SqliteDatabase.Parameter(command, "@feature", feature);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new ExposureState(feature, reader.GetString(0), new ExposureLevel((int)reader.GetInt64(1)), Enum.Parse<ReadMode>(reader.GetString(2)), reader.GetInt64(3))
            : ExposureState.Initial(feature);
    }

    /// <inheritdoc />
    public async Task<ExposureState> SetStateAsync(string feature, string phase, ExposureLevel exposure, ReadMode reads, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);
        var now = _time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        // Idempotent: setting the state it already has changes nothing and records nothing (an activity run again
        // after its host died must not add a second change to the history).
        command.CommandText = """
            INSERT INTO rollout_state (feature, phase, exposure_buckets, reads, generation, updated_at) VALUES (@feature, @phase, @exposure, @reads, 1, @now)
            ON CONFLICT (feature) DO UPDATE SET phase = excluded.phase, exposure_buckets = excluded.exposure_buckets, reads = excluded.reads,
              generation = rollout_state.generation + 1, updated_at = excluded.updated_at
            WHERE rollout_state.phase IS NOT excluded.phase OR rollout_state.exposure_buckets IS NOT excluded.exposure_buckets OR rollout_state.reads IS NOT excluded.reads;
            INSERT INTO rollout_state_history (feature, phase, exposure_buckets, reads, generation, reason, at)
              SELECT feature, phase, exposure_buckets, reads, generation, @reason, @now FROM rollout_state
              WHERE feature = @feature AND changes() > 0;
            SELECT generation FROM rollout_state WHERE feature = @feature;
            """;
        SqliteDatabase.Parameter(command, "@feature", feature);
        SqliteDatabase.Parameter(command, "@phase", phase);
        SqliteDatabase.Parameter(command, "@exposure", exposure.Buckets);
        SqliteDatabase.Parameter(command, "@reads", reads.ToString());
        SqliteDatabase.Parameter(command, "@reason", reason);
        SqliteDatabase.Parameter(command, "@now", now);
        var generation = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        await transaction.CommitAsync(cancellationToken);
        return new ExposureState(feature, phase, exposure, reads, generation);
    }

    /// <inheritdoc />
    public async Task<IGateUnitOfWork> BeginAsync(CancellationToken cancellationToken)
    {
        var connection = await _database.OpenAsync(cancellationToken);
        try
        {
            // IMMEDIATE: take the write lock up front, so that the transaction never fails half-way on a lock upgrade.
            var transaction = connection.BeginTransaction(deferred: false);
            return new UnitOfWork(connection, transaction, _time);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<long?> GetLastWriteVersionAsync(string feature, string subjectId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT version FROM rollout_subject_writes WHERE feature = @feature AND subject = @subject";
        SqliteDatabase.Parameter(command, "@feature", feature);
        SqliteDatabase.Parameter(command, "@subject", subjectId);
        return await command.ExecuteScalarAsync(cancellationToken) is long v ? v : null;
    }

    /// <summary>Every exposure change of a feature, oldest first (for reports and tests).</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<IReadOnlyList<ExposureChange>> ReadStateHistoryAsync(string feature, CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT phase, exposure_buckets, reads, generation, reason, at FROM rollout_state_history WHERE feature = @feature ORDER BY id";
        SqliteDatabase.Parameter(command, "@feature", feature);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var changes = new List<ExposureChange>();
        while (await reader.ReadAsync(cancellationToken))
        {
            changes.Add(new ExposureChange(
                new ExposureState(feature, reader.GetString(0), new ExposureLevel((int)reader.GetInt64(1)), Enum.Parse<ReadMode>(reader.GetString(2)), reader.GetInt64(3)),
                reader.GetString(4),
                DateTimeOffset.Parse(reader.GetString(5), CultureInfo.InvariantCulture)));
        }

        return changes;
    }

    /// <inheritdoc />
    public async Task AppendAsync(RolloutJournalEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT OR IGNORE INTO rollout_journal (feature, at, kind, phase, exposure, detail, instance, seq)
            VALUES (@feature, @at, @kind, @phase, @exposure, @detail, @instance, @seq)
            """;
        SqliteDatabase.Parameter(command, "@feature", entry.Feature);
        SqliteDatabase.Parameter(command, "@at", entry.At.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));
        SqliteDatabase.Parameter(command, "@kind", entry.Kind);
        SqliteDatabase.Parameter(command, "@phase", entry.Phase);
        SqliteDatabase.Parameter(command, "@exposure", entry.ExposurePercent.ToString(CultureInfo.InvariantCulture));
        SqliteDatabase.Parameter(command, "@detail", entry.Detail);
        SqliteDatabase.Parameter(command, "@instance", entry.Instance);
        SqliteDatabase.Parameter(command, "@seq", entry.Sequence);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RolloutJournalEntry>> ReadAsync(string feature, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT at, kind, phase, exposure, detail, instance, seq FROM rollout_journal WHERE feature = @feature ORDER BY at, id";
        SqliteDatabase.Parameter(command, "@feature", feature);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var entries = new List<RolloutJournalEntry>();
        while (await reader.ReadAsync(cancellationToken))
        {
            entries.Add(new RolloutJournalEntry(
                feature,
                DateTimeOffset.Parse(reader.GetString(0), CultureInfo.InvariantCulture),
                reader.GetString(1),
                reader.GetString(2),
                decimal.Parse(reader.GetString(3), CultureInfo.InvariantCulture),
                reader.GetString(4),
                reader.GetString(5),
                reader.GetInt64(6)));
        }

        return entries;
    }

    /// <summary>Committed new-path exposures of a feature, by phase (for reports and tests).</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<IReadOnlyDictionary<string, long>> CountExposuresAsync(string feature, CancellationToken cancellationToken = default)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT phase, COUNT(*) FROM rollout_exposures WHERE feature = @feature GROUP BY phase";
        SqliteDatabase.Parameter(command, "@feature", feature);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    private sealed class UnitOfWork(SqliteConnection connection, SqliteTransaction transaction, TimeProvider time) : IGateUnitOfWork
    {
        private bool _committed;

        public DbConnection Connection => connection;

        public DbTransaction Transaction => transaction;

        public async Task RecordExposureAsync(string feature, string subjectId, ExposureState state, CancellationToken cancellationToken)
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            // The version counter after the new path's writes is the version the target must reach before it
            // may serve this subject (read-your-writes in live mode).
            command.CommandText = """
                INSERT INTO rollout_exposures (feature, subject, phase, exposure_buckets, source_version, at)
                  SELECT @feature, @subject, @phase, @exposure, v, @now FROM rollout_version WHERE id = 1;
                INSERT INTO rollout_subject_writes (feature, subject, version)
                  SELECT @feature, @subject, v FROM rollout_version WHERE id = 1
                  ON CONFLICT (feature, subject) DO UPDATE SET version = MAX(rollout_subject_writes.version, excluded.version);
                """;
            SqliteDatabase.Parameter(command, "@feature", feature);
            SqliteDatabase.Parameter(command, "@subject", subjectId);
            SqliteDatabase.Parameter(command, "@phase", state.Phase);
            SqliteDatabase.Parameter(command, "@exposure", state.Exposure.Buckets);
            SqliteDatabase.Parameter(command, "@now", time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            await transaction.CommitAsync(cancellationToken);
            _committed = true;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                try
                {
                    await transaction.RollbackAsync();
                }
                catch (InvalidOperationException)
                {
                    // Already completed or the connection broke: nothing was committed either way.
                }
            }

            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}

/// <summary>One recorded exposure change.</summary>
/// <param name="State">The state after the change.</param>
/// <param name="Reason">Why.</param>
/// <param name="At">When.</param>
public sealed record ExposureChange(ExposureState State, string Reason, DateTimeOffset At);
