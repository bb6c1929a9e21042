using Microsoft.Data.Sqlite;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// One SQLite file in WAL mode. Connections are pooled by Microsoft.Data.Sqlite; each is opened with a busy
/// timeout so that concurrent writers wait instead of failing, and with <c>synchronous=FULL</c> by default: a
/// commit is on disk when it returns (the dual-write checkpoint advances only after its batch is durable).
/// Stores that may lose their last writes on power loss (telemetry) use <c>NORMAL</c>, which in WAL mode is
/// still safe across process crashes and never corrupts the file.
/// </summary>
public sealed class SqliteDatabase
{
    private readonly string _connectionString;

    /// <summary>Opens (creating if needed) a database file.</summary>
    /// <param name="path">File path.</param>
    /// <param name="busyTimeout">How long a statement waits for a lock held by another writer.</param>
    /// <param name="durable">True: fsync on every commit (<c>synchronous=FULL</c>); false: <c>NORMAL</c>.</param>
    public SqliteDatabase(string path, TimeSpan? busyTimeout = null, bool durable = true)
    {
        Durable = durable;
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

    /// <summary>Whether every commit is fsynced.</summary>
    public bool Durable { get; }

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
            SetPragmas(connection);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A connection of the engine's own for one thread's streaming read (deep reconciliation's source rows), opened in
    /// SQLite's multi-thread mode (<c>SQLITE_OPEN_NOMUTEX</c>). Microsoft.Data.Sqlite opens its connections in serialized
    /// mode, where every column read takes and releases the connection's mutex: about a fifth of the CPU of hashing every
    /// row in a <c>perf</c> profile; a connection used by one thread at a time needs none. Dispose the lease to give the
    /// connection back (after its statements): up to <see cref="MaxIdleReaders"/> are kept open with their page caches
    /// warm (a fresh one costs about a millisecond to open and parse the schema, and reads its pages again), until
    /// <see cref="CloseReaders"/>. A reader has the busy timeout but none of the session pragmas (durability, foreign keys
    /// and triggers concern writes; its page cache is SQLite's default size).
    /// </summary>
    internal ReaderLease RentReader()
    {
        var generation = Volatile.Read(ref _readerGeneration);
        if (_readers.TryTake(out var idle))
        {
            return new ReaderLease(this, idle, generation);
        }

        // Opening a pooled connection first set SQLitePCLRaw's provider, in the constructor.
        var rc = SQLitePCL.raw.sqlite3_open_v2(Path, out var db, SQLitePCL.raw.SQLITE_OPEN_READWRITE | SQLitePCL.raw.SQLITE_OPEN_NOMUTEX, null);
        if (rc != SQLitePCL.raw.SQLITE_OK)
        {
            var message = db is null ? "out of memory" : SQLitePCL.raw.sqlite3_errmsg(db).utf8_to_string();
            db?.Dispose();
            throw new SqliteException($"SQLite could not open '{Path}' for reading: {message}", rc);
        }

        SQLitePCL.raw.sqlite3_busy_timeout(db, (int)Math.Min(int.MaxValue, BusyTimeout.TotalMilliseconds));
        return new ReaderLease(this, db, generation);
    }

    /// <summary>Closes the idle connections of <see cref="RentReader"/> (as clearing the provider's pools does for its own).</summary>
    public void CloseReaders()
    {
        // Connections leased before this call are closed when they come back, not pooled.
        Interlocked.Increment(ref _readerGeneration);
        while (_readers.TryTake(out var db))
        {
            db.Dispose();
        }
    }

    /// <summary>Idle <see cref="RentReader"/> connections kept open.</summary>
    internal static int MaxIdleReaders => Math.Max(2, Environment.ProcessorCount);

    private readonly System.Collections.Concurrent.ConcurrentBag<SQLitePCL.sqlite3> _readers = [];

    /// <summary>How many times <see cref="CloseReaders"/> ran: a lease from an earlier generation is not pooled again.</summary>
    private int _readerGeneration;

    /// <summary>Idle <see cref="RentReader"/> connections (tests).</summary>
    internal int IdleReaders => _readers.Count;

    /// <summary>
    /// A connection from <see cref="RentReader"/>, for one statement at a time prepared through <see cref="Prepare"/>;
    /// disposing it gives the connection back, unless that statement is still open (it would hold a read snapshot): then
    /// the connection is closed with it.
    /// </summary>
    internal sealed class ReaderLease(SqliteDatabase database, SQLitePCL.sqlite3 db, int generation) : IDisposable
    {
        private LeanStatement? _statement;

        /// <summary>Prepares and binds <paramref name="command"/> on this connection (see <see cref="LeanStatement.TryPrepare(SQLitePCL.sqlite3, SqliteCommand)"/>).</summary>
        public LeanStatement? Prepare(SqliteCommand command)
        {
            if (_statement is { IsDisposed: false })
            {
                throw new InvalidOperationException("A reader runs one statement at a time: dispose the previous one first.");
            }

            return _statement = LeanStatement.TryPrepare(db, command);
        }

        public void Dispose()
        {
            if (_statement is { IsDisposed: false } open)
            {
                open.Dispose();
                db.Dispose();
            }
            else if (generation == Volatile.Read(ref database._readerGeneration) && database._readers.Count < MaxIdleReaders)
            {
                database._readers.Add(db);
            }
            else
            {
                db.Dispose();
            }
        }
    }

    /// <summary>Opens a pooled connection with the session pragmas set, synchronously (for callers that cannot await).</summary>
    public SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            SetPragmas(connection);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <remarks>
    /// <c>recursive_triggers</c>: a REPLACE that removes a conflicting row then fires its delete triggers, so that change
    /// capture (and the maintained bucket digests) see the deletion when the application writes through Rollout's
    /// connections (the gate); SQLite leaves it off by default, and other connections keep that blind spot.
    /// </remarks>
    private void SetPragmas(SqliteConnection connection) =>
        Execute(connection, $"PRAGMA synchronous={(Durable ? "FULL" : "NORMAL")}; PRAGMA busy_timeout={(long)BusyTimeout.TotalMilliseconds}; PRAGMA foreign_keys=ON; PRAGMA recursive_triggers=ON; PRAGMA cache_size=-16384;");

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
