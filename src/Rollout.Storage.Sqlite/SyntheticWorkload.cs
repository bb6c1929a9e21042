using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite;

/// <summary>Faults a demo or a rehearsal injects into the new path; changed while the workload runs.</summary>
public sealed class WorkloadFaults
{
    private double _errorRate;
    private long _latencyTicks;

    /// <summary>Share of new-path writes that fail (0–1).</summary>
    public double ErrorRate { get => Volatile.Read(ref _errorRate); set => Volatile.Write(ref _errorRate, value); }

    /// <summary>
    /// Latency added to every new-path write. It is spent before the write's transaction opens (see
    /// <see cref="SyntheticWorkload"/>), so the gate measures it and its timeout applies, but no lock is held meanwhile.
    /// </summary>
    public TimeSpan AddedLatency { get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks)); set => Interlocked.Exchange(ref _latencyTicks, value.Ticks); }

}

/// <summary>Counters of a running workload.</summary>
public sealed class WorkloadCounters
{
    internal long _reads;
    internal long _writes;
    internal long _fellBack;
    internal long _tampered;
    internal long _failed;

    /// <summary>Reads served.</summary>
    public long Reads => Interlocked.Read(ref _reads);

    /// <summary>Writes served.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>New-path writes that fell back to the legacy path.</summary>
    public long FellBack => Interlocked.Read(ref _fellBack);

    /// <summary>Target documents changed behind the pipeline's back (injected drift).</summary>
    public long Tampered => Interlocked.Read(ref _tampered);

    /// <summary>Requests that failed on both paths (should stay 0).</summary>
    public long Failed => Interlocked.Read(ref _failed);
}

/// <summary>
/// Synthetic traffic through the gate on the embedded default: many subjects (the values of the column behind
/// the target's partition key, else the key) reading and updating rows of the source table at a fixed rate,
/// with injectable new-path faults. Writes change a mapped column to a new realistic value, so every write is a
/// real change that the feed carries to the target.
/// </summary>
/// <remarks>
/// The workload builds the gate it drives, so that injected latency wraps the new path's unit of work: the delay
/// comes before the transaction takes the source's write lock. A slow new path in production (a slow dependency,
/// heavier code) holds, on Azure SQL, at most the row locks of what it wrote; SQLite has one writer per file, so a
/// delay inside the transaction would stop every other write, the rollout's own state change (its rollback)
/// included, which is not what the fault models.
/// </remarks>
public sealed class SyntheticWorkload : IDisposable
{
    private readonly EmbeddedRollout _rollout;
    private readonly RolloutGate _gate;
    private readonly int _requestsPerSecond;
    private readonly double _writeShare;
    private readonly int _seed;

    /// <summary>Creates a workload.</summary>
    /// <param name="rollout">The embedded rollout.</param>
    /// <param name="gateOptions">Options of the gate requests go through.</param>
    /// <param name="requestsPerSecond">Offered load.</param>
    /// <param name="writeShare">Share of writes (0–1).</param>
    /// <param name="seed">Random seed.</param>
    public SyntheticWorkload(EmbeddedRollout rollout, GateOptions gateOptions, int requestsPerSecond, double writeShare = 0.3, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        ArgumentOutOfRangeException.ThrowIfLessThan(requestsPerSecond, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(writeShare, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(writeShare, 1);
        _rollout = rollout;
        _gate = rollout.Gate(gateOptions, new SlowNewPathGateStore(rollout.Rollouts, Faults, rollout.Time));
        _requestsPerSecond = requestsPerSecond;
        _writeShare = writeShare;
        _seed = seed;
    }

    /// <summary>Faults to inject.</summary>
    public WorkloadFaults Faults { get; } = new();

    /// <summary>What it has done so far.</summary>
    public WorkloadCounters Counters { get; } = new();

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();

    /// <summary>Runs until cancelled.</summary>
    /// <param name="cancellationToken">Stops the workload.</param>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var rows = await LoadRowsAsync(cancellationToken);
        if (rows.Count == 0)
        {
            throw new InvalidOperationException($"The source table '{_rollout.Source.TableName}' is empty: there is nothing to read or update. Seed it first (rollout run --rows N).");
        }

        var spec = _rollout.Spec;
        var plan = SourceSeeder.Plan(spec, _rollout.Translator.SourceColumns);
        var subjectColumn = SubjectColumn(spec);
        var writable = plan.Where(c => !c.IsKey && !c.Name.Equals(subjectColumn, StringComparison.OrdinalIgnoreCase)).ToArray();
        const int workers = 8;
        var tasks = Enumerable.Range(0, workers).Select(w => WorkerAsync(w, workers, rows, writable, cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The column whose values are the subjects: the single source column behind the partition key, else the first key column.</summary>
    /// <param name="spec">The spec.</param>
    public static string SubjectColumn(RolloutSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var field = spec.Target.PartitionKey.TrimStart('/').Replace('/', '.');
        return spec.Mapping.TryGetValue(field, out var rule) && rule.From is { } from ? from : spec.Source.Key[0];
    }

    private async Task WorkerAsync(int worker, int workers, IReadOnlyList<(SourceKey Key, object?[] KeyValues, string Subject)> rows, SourceSeeder.PlannedColumn[] writable, CancellationToken cancellationToken)
    {
        var random = new Random(_seed * 7919 + worker);
        var interval = TimeSpan.FromSeconds((double)workers / _requestsPerSecond);
        var clock = Stopwatch.StartNew();
        var next = TimeSpan.Zero;
        var keyColumns = _rollout.Spec.Source.Key;
        var table = Identifiers.QuoteSqlite(_rollout.Source.TableName);
        while (!cancellationToken.IsCancellationRequested)
        {
            next += interval;
            var wait = next - clock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken);
            }

            var (key, keyValues, subject) = rows[random.Next(rows.Count)];
            try
            {
                if (writable.Length > 0 && random.NextDouble() < _writeShare)
                {
                    var column = writable[random.Next(writable.Length)];
                    var value = SourceSeeder.Value(column, random.NextInt64(1, 1_000_000), random);
                    var sql = $"UPDATE {table} SET {Identifiers.QuoteSqlite(column.Name)} = @v WHERE " +
                        string.Join(" AND ", keyColumns.Select((k, i) => $"{Identifiers.QuoteSqlite(k)} = @k{i}"));
                    var result = await _gate.WriteAsync(
                        subject,
                        async (unit, ct) =>
                        {
                            // Injected latency was spent before this transaction opened (SlowNewPathGateStore).
                            var faults = Faults;
                            if (faults.ErrorRate > 0 && random.NextDouble() < faults.ErrorRate)
                            {
                                throw new InjectedFaultException("injected new-path failure (--inject error-rate)");
                            }

                            await using var command = (SqliteCommand)unit.Connection.CreateCommand();
                            command.Transaction = (SqliteTransaction)unit.Transaction;
                            Bind(command, sql, value, keyValues);
                            await command.ExecuteNonQueryAsync(ct);
                        },
                        async ct =>
                        {
                            await using var connection = await _rollout.SourceDatabase.OpenAsync(ct);
                            await using var command = connection.CreateCommand();
                            Bind(command, sql, value, keyValues);
                            await command.ExecuteNonQueryAsync(ct);
                        },
                        cancellationToken);
                    Interlocked.Increment(ref Counters._writes);
                    if (result.Outcome is GateWriteOutcome.FellBackOnError or GateWriteOutcome.FellBackOnTimeout)
                    {
                        Interlocked.Increment(ref Counters._fellBack);
                    }

                }
                else
                {
                    await _gate.ReadAsync(subject, key, cancellationToken);
                    Interlocked.Increment(ref Counters._reads);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SqliteException)
            {
                // Both paths failed (for example a lock held too long): counted, and the workload goes on.
                Interlocked.Increment(ref Counters._failed);
            }
        }
    }

    private static void Bind(SqliteCommand command, string sql, object? value, object?[] keyValues)
    {
        command.CommandText = sql;
        SqliteDatabase.Parameter(command, "@v", value);
        for (var i = 0; i < keyValues.Length; i++)
        {
            SqliteDatabase.Parameter(command, $"@k{i}", keyValues[i]);
        }
    }

    /// <summary>
    /// Drift on purpose: changes a share of the target's live documents behind the pipeline's back, as a manual
    /// fix or a stray writer would. Reconciliation finds them (the write marker no longer matches) and repairs them.
    /// </summary>
    /// <param name="share">Share of live documents to change (0–1).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>How many documents were changed.</returns>
    public async Task<int> InjectDriftAsync(double share, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(share);
        await using var connection = await _rollout.TargetDatabase.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE {Identifiers.QuoteSqlite(_rollout.Target.DocumentTable)} SET json = json_set(json, '$.tampered', 1) WHERE deleted = 0 AND abs(random() % 1000000) < @threshold";
        SqliteDatabase.Parameter(command, "@threshold", (long)Math.Round(share * 1_000_000));
        var changed = await command.ExecuteNonQueryAsync(cancellationToken);
        Interlocked.Add(ref Counters._tampered, changed);
        return changed;
    }

    private async Task<IReadOnlyList<(SourceKey Key, object?[] KeyValues, string Subject)>> LoadRowsAsync(CancellationToken cancellationToken)
    {
        var spec = _rollout.Spec;
        var keys = spec.Source.Key;
        var subject = SubjectColumn(spec);
        await using var connection = await _rollout.SourceDatabase.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {string.Join(", ", keys.Select(Identifiers.QuoteSqlite))}, {Identifiers.QuoteSqlite(subject)} FROM {Identifiers.QuoteSqlite(_rollout.Source.TableName)} LIMIT 200000";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<(SourceKey, object?[], string)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var values = new object?[keys.Count];
            for (var i = 0; i < keys.Count; i++)
            {
                values[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            var subjectValue = reader.IsDBNull(keys.Count) ? "none" : Convert.ToString(reader.GetValue(keys.Count), System.Globalization.CultureInfo.InvariantCulture)!;
            rows.Add((SourceKey.From(values), values, subjectValue));
        }

        return rows;
    }
}

/// <summary>
/// The new path's unit of work, opened after the injected latency (<see cref="WorkloadFaults.AddedLatency"/>) has
/// passed: the gate's clock and timeout cover the delay, the source's write lock does not.
/// </summary>
internal sealed class SlowNewPathGateStore(IGateStore inner, WorkloadFaults faults, TimeProvider time) : IGateStore
{
    public async Task<IGateUnitOfWork> BeginAsync(CancellationToken cancellationToken)
    {
        var latency = faults.AddedLatency;
        if (latency > TimeSpan.Zero)
        {
            await Task.Delay(latency, time, cancellationToken);
        }

        return await inner.BeginAsync(cancellationToken);
    }

    public Task<long?> GetLastWriteVersionAsync(string feature, string subjectId, CancellationToken cancellationToken) =>
        inner.GetLastWriteVersionAsync(feature, subjectId, cancellationToken);
}

/// <summary>A failure injected on purpose into the new path.</summary>
public sealed class InjectedFaultException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InjectedFaultException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    public InjectedFaultException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    /// <param name="innerException">Cause.</param>
    public InjectedFaultException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
