using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;

namespace Rollout.Storage.SqlServer;

/// <summary>
/// Checkpoints (with the failed attempts counted at each), backfill progress and leases in the SQL database, beside the source (tables from <see cref="SqlServerSchema.StateTables"/>).
/// A checkpoint never moves backwards. A lease is a row (name, owner, expiry) taken or renewed by one conditional
/// statement on the server's clock, so every instance judges expiry by the same clock; it says which instance owns a
/// feed over time and survives restarts (a crashed owner's lease simply expires). For mutual exclusion of the feed's
/// critical section itself (read a batch, apply it, save the checkpoint) see <see cref="SqlServerFeedLock"/>.
/// </summary>
public sealed class SqlServerStateStore : ICheckpointStore, ILeaseStore, IBackfillProgressStore
{
    private readonly SqlServerConnectionFactory _connections;
    private readonly TimeProvider _time;

    /// <summary>Creates the store.</summary>
    /// <param name="connections">The database.</param>
    /// <param name="time">Clock for the checkpoints' updated-at column (lease expiry uses the server's clock).</param>
    public SqlServerStateStore(SqlServerConnectionFactory connections, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(time);
        _connections = connections;
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
    public async Task<long?> GetAsync(string name, CancellationToken cancellationToken) =>
        await _connections.ScalarAsync(StateSql.GetCheckpoint(name), cancellationToken).ConfigureAwait(false) is long version ? version : null;

    /// <inheritdoc />
    public Task SaveAsync(string name, long version, CancellationToken cancellationToken) =>
        _connections.ExecuteAsync(StateSql.SaveCheckpoint(name, version, _time.GetUtcNow()), cancellationToken);

    /// <inheritdoc />
    public async Task<FeedFailures?> GetFailuresAsync(string name, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, StateSql.GetFailures(name));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                    ? new FeedFailures(reader.GetInt64(0), reader.GetInt32(1), reader.GetString(2), reader.GetFieldValue<DateTimeOffset>(3))
                    : null;
            }
        }
    }

    /// <inheritdoc />
    public async Task<int> RecordFailureAsync(string name, long position, string error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(error);
        return await _connections.ScalarAsync(StateSql.RecordFailure(name, position, error, _time.GetUtcNow()), cancellationToken).ConfigureAwait(false) is int attempts
            ? attempts
            : 0; // a failure at a position older than the one recorded: another instance has moved on (see ICheckpointStore)
    }

    /// <inheritdoc />
    public async Task<BackfillProgress?> GetBackfillAsync(string name, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, StateSql.GetBackfill(name));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                    ? new BackfillProgress(reader.GetInt64(0), reader.IsDBNull(1) ? null : new SourceKey(reader.GetString(1)), reader.GetInt64(2), reader.GetBoolean(3))
                    : null;
            }
        }
    }

    /// <inheritdoc />
    public Task SaveBackfillAsync(string name, BackfillProgress progress, CancellationToken cancellationToken) =>
        _connections.ExecuteAsync(StateSql.SaveBackfill(name, progress), cancellationToken);

    /// <inheritdoc />
    public async Task<bool> TryAcquireAsync(string name, string owner, TimeSpan duration, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(duration, TimeSpan.Zero);
        return await _connections.ScalarAsync(StateSql.AcquireLease(name, owner, duration), cancellationToken).ConfigureAwait(false) is int rows && rows == 1;
    }

    /// <inheritdoc />
    public Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken) =>
        _connections.ExecuteAsync(StateSql.ReleaseLease(name, owner), cancellationToken);
}
