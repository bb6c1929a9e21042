using System.Globalization;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Rollout.Core.Gate;
using Rollout.Core.Health;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// The embedded default's queryable telemetry: every measured event in a SQLite table, written in batches by
/// a background writer so that recording never blocks a request. The health evaluation reads windows from it.
/// When the writer falls behind by <see cref="Capacity"/> events, the oldest pending ones are dropped and counted
/// (<see cref="Dropped"/>) rather than growing memory without bound.
/// </summary>
public sealed class SqliteTelemetryStore : ITelemetrySink, IHealthWindowSource, IAsyncDisposable
{
    /// <summary>Pending events held in memory at most.</summary>
    public const int Capacity = 200_000;

    private readonly SqliteDatabase _database;
    private readonly Channel<TelemetryEvent> _pending;
    private readonly Task _writer;
    private readonly SemaphoreSlim _flushLock = new(1, 1);
    private long _dropped;
    private long _written;

    /// <summary>Creates the store and starts its writer.</summary>
    /// <param name="database">The telemetry database.</param>
    public SqliteTelemetryStore(SqliteDatabase database)
    {
        _database = database;
        using (var connection = database.Open())
        {
            SqliteDatabase.Execute(connection, """
                CREATE TABLE IF NOT EXISTS telemetry_events (
                  ts_ms INTEGER NOT NULL, feature TEXT NOT NULL, phase TEXT NOT NULL, exposure_buckets INTEGER NOT NULL,
                  kind TEXT NOT NULL, path TEXT NOT NULL, outcome TEXT NOT NULL, duration_ms REAL NOT NULL);
                CREATE INDEX IF NOT EXISTS telemetry_events_window ON telemetry_events (feature, ts_ms);
                CREATE TABLE IF NOT EXISTS drift_samples (
                  ts_ms INTEGER NOT NULL, feature TEXT NOT NULL, compared INTEGER NOT NULL, drifted INTEGER NOT NULL,
                  full_pass INTEGER NOT NULL, oldest_age_s REAL);
                CREATE INDEX IF NOT EXISTS drift_samples_window ON drift_samples (feature, ts_ms);
                """);
        }

        _pending = Channel.CreateBounded<TelemetryEvent>(new BoundedChannelOptions(Capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => Interlocked.Increment(ref _dropped));
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>Events dropped because the writer fell behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Events written so far.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <inheritdoc />
    public void Record(TelemetryEvent @event) => _pending.Writer.TryWrite(@event);

    /// <inheritdoc />
    public void RecordDrift(DriftSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        // Rare (one per reconciliation run) and read by health evaluation: written at once.
        using var connection = _database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO drift_samples (ts_ms, feature, compared, drifted, full_pass, oldest_age_s) VALUES (@ts, @feature, @compared, @drifted, @full, @age)";
        SqliteDatabase.Parameter(command, "@ts", sample.Timestamp.ToUnixTimeMilliseconds());
        SqliteDatabase.Parameter(command, "@feature", sample.Feature);
        SqliteDatabase.Parameter(command, "@compared", sample.Compared);
        SqliteDatabase.Parameter(command, "@drifted", sample.Drifted);
        SqliteDatabase.Parameter(command, "@full", sample.FullPass ? 1 : 0);
        SqliteDatabase.Parameter(command, "@age", sample.OldestDriftAge?.TotalSeconds);
        command.ExecuteNonQuery();
    }

    /// <summary>Writes every event recorded so far.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        await _flushLock.WaitAsync(cancellationToken);
        try
        {
            await DrainAsync();
        }
        finally
        {
            _flushLock.Release();
        }
    }

    /// <summary>
    /// The health evidence of a window: per path, requests, errors (error and timeout outcomes) and latency,
    /// and drift from shadow comparisons plus the latest reconciliation run in the window. Fallback executions of
    /// the legacy path are left out of the control group.
    /// </summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="from">Window start (inclusive).</param>
    /// <param name="to">Window end (exclusive).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<HealthWindow> QueryWindowAsync(string feature, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await FlushAsync(cancellationToken);
        var legacy = new Accumulator();
        var candidate = new Accumulator();
        long compared = 0, drifted = 0;
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT kind, path, outcome, duration_ms FROM telemetry_events
            WHERE feature = @feature AND ts_ms >= @from AND ts_ms < @to
            """;
        SqliteDatabase.Parameter(command, "@feature", feature);
        SqliteDatabase.Parameter(command, "@from", from.ToUnixTimeMilliseconds());
        SqliteDatabase.Parameter(command, "@to", to.ToUnixTimeMilliseconds());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var kind = reader.GetString(0);
            var outcome = reader.GetString(2);
            if (kind == "shadow")
            {
                compared++;
                drifted += outcome == "mismatch" ? 1 : 0;
                continue;
            }

            if (kind is not ("read" or "write"))
            {
                continue;
            }

            var target = reader.GetString(1) == "new" ? candidate : legacy;
            target.Add(outcome is "error" or "timeout", reader.GetDouble(3));
        }

        // The latest reconciliation in the window counts with the shadow comparisons.
        await using var drift = connection.CreateCommand();
        drift.CommandText = """
            SELECT compared, drifted, full_pass FROM drift_samples WHERE feature = @feature AND ts_ms >= @from AND ts_ms < @to
            ORDER BY ts_ms DESC LIMIT 1
            """;
        SqliteDatabase.Parameter(drift, "@feature", feature);
        SqliteDatabase.Parameter(drift, "@from", from.ToUnixTimeMilliseconds());
        SqliteDatabase.Parameter(drift, "@to", to.ToUnixTimeMilliseconds());
        var fullPass = false;
        await using (var sample = await drift.ExecuteReaderAsync(cancellationToken))
        {
            if (sample.Read())
            {
                compared += sample.GetInt64(0);
                drifted += sample.GetInt64(1);
                fullPass = sample.GetInt64(2) != 0;
            }
        }

        return new HealthWindow(legacy.ToStats(), candidate.ToStats(), new DriftStats(compared, drifted, fullPass));
    }

    /// <summary>Counts events by kind, path and outcome (for reports and tests).</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<IReadOnlyDictionary<(string Kind, string Path, string Outcome), long>> CountAsync(string feature, CancellationToken cancellationToken = default)
    {
        await FlushAsync(cancellationToken);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT kind, path, outcome, COUNT(*) FROM telemetry_events WHERE feature = @feature GROUP BY kind, path, outcome";
        SqliteDatabase.Parameter(command, "@feature", feature);
        var counts = new Dictionary<(string, string, string), long>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            counts[(reader.GetString(0), reader.GetString(1), reader.GetString(2))] = reader.GetInt64(3);
        }

        return counts;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await _writer;
        _flushLock.Dispose();
    }

    private async Task WriteLoopAsync()
    {
        while (await _pending.Reader.WaitToReadAsync())
        {
            try
            {
                await _flushLock.WaitAsync();
                try
                {
                    await DrainAsync();
                }
                finally
                {
                    _flushLock.Release();
                }
            }
            catch (SqliteException)
            {
                // The events went back to the queue; try again shortly rather than stop recording for good.
                await Task.Delay(1000);
                continue;
            }

            // Let events accumulate into larger batches.
            await Task.Delay(50);
        }
    }

    /// <summary>Writes everything pending in batches. Events leave the queue only once their batch committed; a failed batch is put back.</summary>
    private async Task DrainAsync()
    {
        var batch = new List<TelemetryEvent>(1024);
        while (true)
        {
            batch.Clear();
            while (batch.Count < 10_000 && _pending.Reader.TryRead(out var e))
            {
                batch.Add(e);
            }

            if (batch.Count == 0)
            {
                return;
            }

            try
            {
                await WriteBatchAsync(batch);
            }
            catch (SqliteException)
            {
                foreach (var e in batch)
                {
                    _pending.Writer.TryWrite(e);
                }

                throw;
            }

            Interlocked.Add(ref _written, batch.Count);
        }
    }

    private async Task WriteBatchAsync(List<TelemetryEvent> batch)
    {
        // Not cancellable once started: a batch is written whole or put back.
        await using var connection = await _database.OpenAsync(CancellationToken.None);
        await using var transaction = connection.BeginTransaction(deferred: false);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO telemetry_events (ts_ms, feature, phase, exposure_buckets, kind, path, outcome, duration_ms)
            VALUES (@ts, @feature, @phase, @exposure, @kind, @path, @outcome, @duration)
            """;
        var ts = SqliteDatabase.Parameter(command, "@ts", null);
        var feature = SqliteDatabase.Parameter(command, "@feature", null);
        var phase = SqliteDatabase.Parameter(command, "@phase", null);
        var exposure = SqliteDatabase.Parameter(command, "@exposure", null);
        var kind = SqliteDatabase.Parameter(command, "@kind", null);
        var path = SqliteDatabase.Parameter(command, "@path", null);
        var outcome = SqliteDatabase.Parameter(command, "@outcome", null);
        var duration = SqliteDatabase.Parameter(command, "@duration", null);
        foreach (var e in batch)
        {
            ts.Value = e.Timestamp.ToUnixTimeMilliseconds();
            feature.Value = e.Feature;
            phase.Value = e.Phase;
            exposure.Value = e.ExposureBuckets;
            kind.Value = e.Kind;
            path.Value = e.Path;
            outcome.Value = e.Outcome;
            duration.Value = e.DurationMs;
            command.ExecuteNonQuery();
        }

        await transaction.CommitAsync(CancellationToken.None);
    }

    private sealed class Accumulator
    {
        private readonly LatencyHistogram _latency = new();
        private long _count;
        private long _errors;

        public void Add(bool error, double durationMs)
        {
            _count++;
            _errors += error ? 1 : 0;
            _latency.Record(durationMs);
        }

        public PathStats ToStats() => new(_count, _errors, _latency);
    }
}
