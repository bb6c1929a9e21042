using Microsoft.Data.Sqlite;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// One SQLite file in WAL mode. Connections are pooled by Microsoft.Data.Sqlite; each is opened with
/// <c>synchronous=NORMAL</c> (in WAL mode: durable across process crashes, the last transactions can be lost
/// on power loss but the file never corrupts) and a busy timeout so that concurrent writers wait instead of failing.
/// </summary>
public sealed class SqliteDatabase
{
    private readonly string _connectionString;

    /// <summary>Opens (creating if needed) a database file.</summary>
    /// <param name="path">File path.</param>
    /// <param name="busyTimeout">How long a statement waits for a lock held by another writer.</param>
    public SqliteDatabase(string path, TimeSpan? busyTimeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        BusyTimeout = busyTimeout ?? TimeSpan.FromSeconds(30);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = (int)Math.Ceiling(BusyTimeout.TotalSeconds),
        }.ToString();
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");
    }

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>Lock wait budget.</summary>
    public TimeSpan BusyTimeout { get; }

    /// <summary>Opens a pooled connection with the session pragmas set.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            Execute(connection, $"PRAGMA synchronous=NORMAL; PRAGMA busy_timeout={(long)BusyTimeout.TotalMilliseconds}; PRAGMA foreign_keys=ON;");
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a statement without results.</summary>
    /// <param name="connection">Open connection.</param>
    /// <param name="sql">Statement text (identifiers already validated and quoted).</param>
    /// <param name="transaction">Transaction, if any.</param>
    internal static int Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command.ExecuteNonQuery();
    }

    /// <summary>Adds a parameter.</summary>
    internal static SqliteParameter Parameter(SqliteCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return parameter;
    }
}
