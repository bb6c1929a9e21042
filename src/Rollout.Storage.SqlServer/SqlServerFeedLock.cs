using Microsoft.Data.SqlClient;

namespace Rollout.Storage.SqlServer;

/// <summary>
/// An exclusive <c>sp_getapplock</c> owned by a session, held for the feed's critical section (read a batch, apply it to
/// the target, save the checkpoint). The lease (<see cref="SqlServerStateStore"/>) decides which instance should run the
/// feed; holding this lock as well would keep two from running a batch at the same time even when a lease expired
/// mid-batch (a pause longer than the lease): the second waits, or gives up after its wait. Not used by the dual-write
/// processor yet, which relies on the lease alone (an overlapping batch is harmless there: checkpoints never move back
/// and target writes are version-guarded). The lock lives as long as the connection the
/// instance keeps open for it: <see cref="DisposeAsync"/> releases it, and SQL Server releases it by itself when the
/// session ends (the process died, the connection broke). Not a substitute for the lease: it shows nothing of who owns
/// the feed, and a lost connection silently gives it up (checkpoints never moving backwards and version-guarded target
/// writes keep a batch that overlaps after that harmless).
/// </summary>
public sealed class SqlServerFeedLock : IAsyncDisposable
{
    private readonly SqlServerConnectionFactory _connections;
    private readonly SqlConnection _connection;
    private bool _released;

    private SqlServerFeedLock(SqlServerConnectionFactory connections, SqlConnection connection, string resource)
    {
        _connections = connections;
        _connection = connection;
        Resource = resource;
    }

    /// <summary>The lock's resource name (binary-compared by SQL Server).</summary>
    public string Resource { get; }

    /// <summary>Takes the lock, waiting up to <paramref name="wait"/>; null when another session holds it.</summary>
    /// <param name="connections">The database.</param>
    /// <param name="resource">Resource name, e.g. the feed's name (at most 255 characters).</param>
    /// <param name="wait">How long to wait for it (zero: do not wait).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="InvalidOperationException">sp_getapplock reported a deadlock or a call error.</exception>
    public static async Task<SqlServerFeedLock?> TryAcquireAsync(SqlServerConnectionFactory connections, string resource, TimeSpan wait, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connections);
        var statement = StateSql.GetAppLock(resource, wait);
        var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            int result;
            await using (var command = connections.Command(connection, statement.Text))
            {
                command.Parameters.AddRange(statement.Parameters.ToArray());
                // The lock wait must not be cut short by the command timeout.
                command.CommandTimeout = Math.Max(connections.CommandTimeoutSeconds, (int)Math.Ceiling(wait.TotalSeconds) + connections.CommandTimeoutSeconds);
                result = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            }

            switch (result)
            {
                case >= 0:
                    return new SqlServerFeedLock(connections, connection, resource);
                case -1:
                    await connection.DisposeAsync().ConfigureAwait(false);
                    return null;
                default:
                    throw new InvalidOperationException($"sp_getapplock for '{resource}' returned {result} (-2 cancelled, -3 deadlock victim, -999 call error).");
            }
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Releases the lock and closes its connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        try
        {
            var statement = StateSql.ReleaseAppLock(Resource);
            await using var command = _connections.Command(_connection, statement.Text);
            command.Parameters.AddRange(statement.Parameters.ToArray());
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch
        {
            // The release failed: make sure the session ends (and with it the lock) rather than going back to the pool.
            SqlConnection.ClearPool(_connection);
            throw;
        }
        finally
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
