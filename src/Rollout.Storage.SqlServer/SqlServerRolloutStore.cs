using System.Data;
using System.Data.Common;
using Microsoft.Data.SqlClient;
using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Plan;
using Rollout.Core.Spec;

namespace Rollout.Storage.SqlServer;

/// <summary>
/// The rollout's own state in the source database, so that it changes transactionally with the data (as the embedded
/// <c>SqliteRolloutStore</c>): the exposure state (phase, exposure, read mode) and its history, the exposure ledger (one row
/// per committed new-path write), each subject's last written source version, and the journal of the rollout orchestration. The gate's unit of work is one
/// SqlTransaction on one connection: the new path's writes and the exposure record commit together or not at all, each
/// command bounded by the configured command timeout and by the gate's own timeout (its cancellation cancels the command),
/// and disposing it uncommitted rolls everything back.
/// </summary>
/// <remarks>
/// SQL Server assigns a transaction's change-tracking version when it commits, so, unlike SQLite, the version a subject's
/// write reached cannot be recorded inside the transaction. The unit of work records the version the transaction started
/// after and marks the write pending; right after the commit it resolves it to the highest change of the source table since
/// then (at least the transaction's own version; a version of that table, so the feed's checkpoint reaches it). If the
/// process dies between commit and resolution, the next <see cref="GetLastWriteVersionAsync"/> resolves it the same way.
/// </remarks>
public sealed class SqlServerRolloutStore : IExposureStateStore, IGateStore, IRolloutJournal
{
    private readonly SqlServerConnectionFactory _connections;
    private readonly SqlServerTableName _sourceTable;
    private readonly TimeProvider _time;

    /// <summary>Creates the store.</summary>
    /// <param name="connections">The source database.</param>
    /// <param name="sourceTable">The feature's source table (spec name), whose change versions a subject's writes are measured in.</param>
    /// <param name="time">Clock for history and ledger timestamps.</param>
    public SqlServerRolloutStore(SqlServerConnectionFactory connections, string sourceTable, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(time);
        _connections = connections;
        _sourceTable = SqlServerTableName.Parse(sourceTable);
        _time = time;
    }

    /// <summary>Creates the tables if they do not exist (needs CREATE TABLE; or run <see cref="SqlServerSchema.Script"/>).</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, SqlServerSchema.StateTables);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<ExposureState> GetStateAsync(string feature, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, RolloutSql.GetState(feature));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                    ? new ExposureState(feature, reader.GetString(0), new ExposureLevel(reader.GetInt32(1)), Enum.Parse<ReadMode>(reader.GetString(2)), reader.GetInt64(3))
                    : ExposureState.Initial(feature);
            }
        }
    }

    /// <inheritdoc />
    public async Task<ExposureState> SetStateAsync(string feature, string phase, ExposureLevel exposure, ReadMode reads, string reason, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                // A failure before the commit leaves the transaction uncommitted: disposing it rolls back state and history together.
                await using var command = _connections.Command(connection, RolloutSql.SetState(feature, phase, exposure, reads, reason, _time.GetUtcNow()), transaction);
                var generation = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return new ExposureState(feature, phase, exposure, reads, generation);
            }
        }
    }

    /// <summary>Every exposure change of a feature, oldest first (for reports and tests).</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<IReadOnlyList<(ExposureState State, string Reason, DateTimeOffset At)>> ReadStateHistoryAsync(string feature, CancellationToken cancellationToken = default)
    {
        var changes = new List<(ExposureState, string, DateTimeOffset)>();
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, RolloutSql.StateHistory(feature));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    changes.Add((new ExposureState(feature, reader.GetString(0), new ExposureLevel(reader.GetInt32(1)), Enum.Parse<ReadMode>(reader.GetString(2)), reader.GetInt64(3)),
                        reader.GetString(4), reader.GetFieldValue<DateTimeOffset>(5)));
                }
            }
        }

        return changes;
    }

    /// <inheritdoc />
    public async Task AppendAsync(RolloutJournalEntry entry, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, RolloutSql.AppendJournal(entry));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RolloutJournalEntry>> ReadAsync(string feature, CancellationToken cancellationToken)
    {
        var entries = new List<RolloutJournalEntry>();
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, RolloutSql.ReadJournal(feature));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    entries.Add(new RolloutJournalEntry(feature, reader.GetFieldValue<DateTimeOffset>(0), reader.GetString(1), reader.GetString(2),
                        reader.GetDecimal(3), reader.GetString(4), reader.GetString(5), reader.GetInt64(6)));
                }
            }
        }

        return entries;
    }

    /// <summary>Committed new-path exposures of a feature, by phase.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<IReadOnlyDictionary<string, long>> CountExposuresAsync(string feature, CancellationToken cancellationToken = default)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, RolloutSql.CountExposures(feature));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    counts[reader.GetString(0)] = reader.GetInt64(1);
                }
            }
        }

        return counts;
    }

    /// <inheritdoc />
    public async Task<IGateUnitOfWork> BeginAsync(CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            try
            {
                await using var command = _connections.Command(connection, RolloutSql.VersionBefore, transaction);
                var before = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
                return new UnitOfWork(this, connection, transaction, before);
            }
            catch
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    public async Task<long?> GetLastWriteVersionAsync(string feature, string subjectId, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            return await ResolveAsync(connection, feature, subjectId, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<long?> ResolveAsync(SqlConnection connection, string feature, string subjectId, CancellationToken cancellationToken)
    {
        await using var command = _connections.Command(connection, RolloutSql.ResolveLastWrite(_sourceTable, feature, subjectId));
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long version ? version : null;
    }

    private sealed class UnitOfWork(SqlServerRolloutStore store, SqlConnection connection, SqlTransaction transaction, long before) : IGateUnitOfWork
    {
        private readonly List<(string Feature, string Subject)> _recorded = [];
        private bool _committed;

        public DbConnection Connection => connection;

        public DbTransaction Transaction => transaction;

        public async Task RecordExposureAsync(string feature, string subjectId, ExposureState state, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(state);
            await using var command = store._connections.Command(connection,
                RolloutSql.RecordExposure(feature, subjectId, state.Phase, state.Exposure, before, store._time.GetUtcNow()), transaction);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            _recorded.Add((feature, subjectId));
        }

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            _committed = true;
            foreach (var (feature, subject) in _recorded)
            {
                try
                {
                    await store.ResolveAsync(connection, feature, subject, CancellationToken.None).ConfigureAwait(false);
                }
                catch (SqlException)
                {
                    // Committed already; the write stays pending and the next read of the subject's version resolves it.
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                try
                {
                    await transaction.RollbackAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidOperationException or SqlException)
                {
                    // Already completed, or the connection broke (SQL Server rolls back an orphaned transaction): nothing was committed.
                }
            }

            await transaction.DisposeAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
