using System.Data;
using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer;

/// <summary>The reconciliation audit trail in the SQL database (as the embedded store): runs and affected keys; rows are never deleted.</summary>
public sealed class SqlServerAuditStore : IReconcileAuditStore
{
    private readonly SqlServerConnectionFactory _connections;

    /// <summary>Creates the store (tables from <see cref="SqlServerSchema.StateTables"/>; <see cref="SqlServerStateStore.InitializeAsync"/> creates them).</summary>
    /// <param name="connections">The database.</param>
    public SqlServerAuditStore(SqlServerConnectionFactory connections)
    {
        ArgumentNullException.ThrowIfNull(connections);
        _connections = connections;
    }

    /// <inheritdoc />
    public async Task<ReconcileRun?> GetUnfinishedRunAsync(string feature, CancellationToken cancellationToken)
    {
        var runs = await QueryRunsAsync(AuditSql.UnfinishedRun(feature), cancellationToken).ConfigureAwait(false);
        return runs.Count > 0 ? runs[0] : null;
    }

    /// <inheritdoc />
    public async Task<long> StartRunAsync(ReconcileRun run, CancellationToken cancellationToken) =>
        (long)(await _connections.ScalarAsync(AuditSql.StartRun(run), cancellationToken).ConfigureAwait(false))!;

    /// <inheritdoc />
    public async Task RecordKeysAsync(long runId, IReadOnlyList<AuditedKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            return;
        }

        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                long? previous;
                await using (var read = _connections.Command(connection, AuditSql.PreviousRun(runId), transaction))
                {
                    previous = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long id ? id : null;
                }

                foreach (var key in keys)
                {
                    await using var command = _connections.Command(connection, AuditSql.RecordKey(runId, previous, key), transaction);
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public Task CompleteSegmentAsync(long runId, SourceKey? lastKey, ReconcileCounts counts, CancellationToken cancellationToken) =>
        _connections.ExecuteAsync(AuditSql.UpdateRun(runId, nameof(ReconcileStatus.Running), lastKey?.Text, counts, null, setLastKey: true), cancellationToken);

    /// <inheritdoc />
    public Task FinishRunAsync(long runId, ReconcileStatus status, ReconcileCounts counts, DateTimeOffset ended, CancellationToken cancellationToken) =>
        _connections.ExecuteAsync(AuditSql.UpdateRun(runId, status.ToString(), null, counts, ended, setLastKey: false), cancellationToken);

    /// <inheritdoc />
    public async Task<ReconcileRun?> GetRunAsync(string feature, long runId, CancellationToken cancellationToken)
    {
        var runs = await QueryRunsAsync(AuditSql.GetRun(feature, runId), cancellationToken).ConfigureAwait(false);
        return runs.Count > 0 ? runs[0] : null;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ReconcileRun>> ListRunsAsync(string feature, int max, CancellationToken cancellationToken) =>
        QueryRunsAsync(AuditSql.ListRuns(feature, max), cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<AuditedKey>> ListKeysAsync(long runId, CancellationToken cancellationToken)
    {
        var keys = new List<AuditedKey>();
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, AuditSql.ListKeys(runId));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    keys.Add(new AuditedKey(
                        SourceKey.FromStore(reader.GetString(0), (byte[])reader.GetValue(1)),
                        Enum.Parse<DriftKind>(reader.GetString(2)),
                        Enum.Parse<RepairAction>(reader.GetString(3)),
                        reader.IsDBNull(4) ? null : reader.GetInt64(4),
                        reader.IsDBNull(5) ? null : reader.GetInt64(5),
                        reader.IsDBNull(6) ? null : ContentHash.Parse(reader.GetString(6)),
                        reader.IsDBNull(7) ? null : ContentHash.Parse(reader.GetString(7)),
                        reader.GetFieldValue<DateTimeOffset>(8),
                        reader.IsDBNull(9) ? null : reader.GetString(9)));
                }
            }
        }

        // Key order is SortKey's byte order; sorted here because SQL Server compares varbinary values ignoring trailing zero bytes.
        keys.Sort((a, b) => SortKey.Compare(a.Key.Sort, b.Key.Sort));
        return keys;
    }

    /// <inheritdoc />
    public async Task<DateTimeOffset?> OldestUnresolvedSinceAsync(long runId, CancellationToken cancellationToken) =>
        await _connections.ScalarAsync(AuditSql.OldestUnresolvedSince(runId), cancellationToken).ConfigureAwait(false) is DateTimeOffset at ? at : null;

    private async Task<IReadOnlyList<ReconcileRun>> QueryRunsAsync(SqlStatement statement, CancellationToken cancellationToken)
    {
        var runs = new List<ReconcileRun>();
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, statement);
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    SourceKey? Key(int i) => reader.IsDBNull(i) ? null : new SourceKey(reader.GetString(i));
                    runs.Add(new ReconcileRun(
                        reader.GetInt64(0), reader.GetString(1), Enum.Parse<ReconcileDepth>(reader.GetString(2)), Enum.Parse<RepairMode>(reader.GetString(3)),
                        reader.GetFieldValue<DateTimeOffset>(4),
                        reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5),
                        Key(6), Key(7), Key(8), Enum.Parse<ReconcileStatus>(reader.GetString(9)),
                        new ReconcileCounts
                        {
                            Compared = reader.GetInt64(10), Missing = reader.GetInt64(11), Extra = reader.GetInt64(12), Divergent = reader.GetInt64(13),
                            Stale = reader.GetInt64(14), TargetAhead = reader.GetInt64(15), Untranslatable = reader.GetInt64(16),
                            Repaired = reader.GetInt64(17), Flagged = reader.GetInt64(18), FetchedInFull = reader.GetInt64(19), TargetRowsRead = reader.GetInt64(20),
                        }));
                }
            }
        }

        return runs;
    }
}
