using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Rollout.Core.DataPath;
using Rollout.Core.Health;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;
using Spectre.Console;

namespace Rollout.Cli.Bench;

/// <summary>Settings of <c>rollout bench dualwrite</c>.</summary>
internal sealed record DualWriteBenchOptions(int Changes, int BaselineChanges, int BatchSize, int OfferedRate, TimeSpan LagDuration, string Folder);

/// <summary>A measured result, printed as a table and used by tests.</summary>
internal sealed record DualWriteBenchResult(
    double GenerateSeconds,
    double BatchedSeconds,
    long BatchedChanges,
    double BaselineSeconds,
    long BaselineChanges,
    long LagSamples,
    double LagP50Ms,
    double LagP99Ms,
    double AchievedRate,
    long PeakWorkingSetBytes)
{
    public double BatchedRate => BatchedChanges / BatchedSeconds;

    public double BaselineRate => BaselineChanges / BaselineSeconds;

    public double Ratio => BatchedRate / BaselineRate;
}

/// <summary>
/// The dual-write macro benchmark: one generated source of N changes (inserts through the change-capture
/// triggers), applied by the batched processor and, on the same source, by a naive baseline that applies
/// one change per transaction with a checkpoint per change; then the end-to-end lag (source commit to
/// target commit) at a fixed offered load, with the processor polling as it does in production.
/// </summary>
internal static class DualWriteBench
{
    internal const string SpecJson = """
        {
          "feature": "bench-orders",
          "source": { "table": "Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": {
            "id": { "from": "OrderId", "convert": "string" },
            "customerId": { "from": "CustomerId", "convert": "string" },
            "status": { "from": "Status", "convert": "lower" },
            "total": { "from": "TotalCents", "convert": "centsToDecimal" },
            "currency": "Currency",
            "placedAt": { "from": "PlacedAt", "convert": "isoDateTime" },
            "shipping.city": "ShipCity",
            "shipping.country": { "from": "ShipCountry", "convert": "upper" }
          },
          "phases": [ { "name": "full", "exposure": 100, "bake": "PT1M" } ]
        }
        """;

    public static async Task<DualWriteBenchResult> RunAsync(DualWriteBenchOptions options, Action<string> log, CancellationToken cancellationToken)
    {
        var spec = RolloutSpecLoader.Load(SpecJson).Spec!;
        Directory.CreateDirectory(options.Folder);
        await using var rollout = EmbeddedRollout.Open(options.Folder, spec, TimeProvider.System);

        log($"generating {options.Changes:N0} changes (inserts through the change-capture triggers)…");
        var watch = Stopwatch.StartNew();
        await SourceSeeder.CreateTableAsync(rollout, cancellationToken);
        await rollout.InitializeAsync(cancellationToken);
        await SourceSeeder.SeedAsync(rollout, options.Changes, seed: 42, cancellationToken: cancellationToken);
        var generate = watch.Elapsed.TotalSeconds;
        var feedVersion = await rollout.Source.GetCurrentVersionAsync(cancellationToken);
        log($"generated in {generate:F1} s; feed at version {feedVersion:N0}");

        log($"batched processor (batch {options.BatchSize:N0}) from version 0…");
        watch.Restart();
        var batched = await rollout.Processor("bench-batched", options.BatchSize).DrainAsync(cancellationToken);
        var batchedSeconds = watch.Elapsed.TotalSeconds;
        log($"batched: {batched.Applied:N0} changes in {batchedSeconds:F1} s");

        log($"naive baseline (one change per transaction) on the first {options.BaselineChanges:N0} changes of the same feed…");
        var naiveTarget = new SqliteTargetStore(new SqliteDatabase(Path.Combine(options.Folder, "target-naive.db")), spec.Target.Container, TimeProvider.System);
        await naiveTarget.InitializeAsync(cancellationToken);
        watch.Restart();
        var naive = await RunNaiveAsync(rollout, naiveTarget, options.BaselineChanges, options.BatchSize, cancellationToken);
        var naiveSeconds = watch.Elapsed.TotalSeconds;
        log($"baseline: {naive:N0} changes in {naiveSeconds:F1} s");

        log($"lag at an offered load of {options.OfferedRate:N0} changes/s for {options.LagDuration.TotalSeconds:N0} s…");
        var (lag, achieved) = await MeasureLagAsync(rollout, options, cancellationToken);
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return new DualWriteBenchResult(generate, batchedSeconds, batched.Applied, naiveSeconds, naive,
            lag.Count, lag.Percentile(0.50) ?? 0, lag.Percentile(0.99) ?? 0, achieved, process.PeakWorkingSet64);
    }

    public static void Print(IAnsiConsole console, DualWriteBenchOptions options, DualWriteBenchResult r)
    {
        var table = new Table().Title("rollout bench dualwrite").AddColumns("measure", "value");
        table.AddRow("source changes generated", r.BatchedChanges.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("batched processor", $"{r.BatchedRate:N0} changes/s ({r.BatchedChanges:N0} in {r.BatchedSeconds:F1} s, batch {options.BatchSize:N0})");
        table.AddRow("naive baseline (1 change/transaction)", $"{r.BaselineRate:N0} changes/s ({r.BaselineChanges:N0} in {r.BaselineSeconds:F1} s)");
        table.AddRow("ratio batched / baseline", $"{r.Ratio:F1}x");
        table.AddRow($"lag at {options.OfferedRate:N0} changes/s offered ({r.AchievedRate:N0}/s achieved)", $"p50 {r.LagP50Ms:F0} ms, p99 {r.LagP99Ms:F0} ms ({r.LagSamples:N0} samples)");
        table.AddRow("peak working set (whole run)", $"{r.PeakWorkingSetBytes / 1024.0 / 1024.0:F0} MB");
        console.Write(table);
    }

    /// <summary>One change per transaction: read the feed, then apply and checkpoint each change on its own.</summary>
    private static async Task<long> RunNaiveAsync(EmbeddedRollout rollout, SqliteTargetStore target, int limit, int readBatch, CancellationToken cancellationToken)
    {
        long applied = 0, checkpoint = 0;
        const string name = "bench-naive";
        while (applied < limit)
        {
            var changes = await rollout.Source.ReadChangesAsync(checkpoint, Math.Min(readBatch, limit - (int)applied), cancellationToken);
            if (changes.Count == 0)
            {
                break;
            }

            foreach (var change in changes)
            {
                var document = change.Row is null ? null : rollout.Translator.Translate(change.Row).Document;
                await target.ApplyAsync([new TargetWrite(change.Key, change.Version, document)], cancellationToken);
                await target.SaveAsync(name, change.Version, cancellationToken);
                checkpoint = change.Version;
                applied++;
            }
        }

        return applied;
    }

    private static async Task<(LatencyHistogram Lag, double AchievedRate)> MeasureLagAsync(EmbeddedRollout rollout, DualWriteBenchOptions options, CancellationToken cancellationToken)
    {
        var committed = new ConcurrentDictionary<string, long>();
        var lag = new LatencyHistogram();
        var measuring = new LagTarget(rollout.Target, committed, lag);
        var processor = new DualWriteProcessor(rollout.Spec.Feature, rollout.Translator, rollout.Source, measuring, rollout.Target, rollout.Target, rollout.Target,
            new DualWriteOptions { InstanceId = "bench-lag", BatchSize = options.BatchSize }, TimeProvider.System);
        await processor.DrainAsync(cancellationToken);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = processor.RunAsync(TimeSpan.FromMilliseconds(10), stop.Token);

        // The writer commits every 10 ms a transaction of rate/100 updates, as a steady offered load.
        var random = new Random(7);
        var perTick = Math.Max(1, options.OfferedRate / 100);
        long written = 0;
        var watch = Stopwatch.StartNew();
        await using (var connection = await rollout.SourceDatabase.OpenAsync(cancellationToken))
        {
            var tick = 0;
            while (watch.Elapsed < options.LagDuration)
            {
                await using (var transaction = connection.BeginTransaction(deferred: false))
                await using (var command = connection.CreateCommand())
                {
                    command.Transaction = transaction;
                    command.CommandText = "UPDATE Orders SET TotalCents = TotalCents + 1 WHERE OrderId = @id";
                    var id = command.CreateParameter();
                    id.ParameterName = "@id";
                    command.Parameters.Add(id);
                    var keys = new string[perTick];
                    for (var i = 0; i < perTick; i++)
                    {
                        var key = random.NextInt64(1, options.Changes + 1);
                        id.Value = key;
                        await command.ExecuteNonQueryAsync(cancellationToken);
                        keys[i] = $"[{key.ToString(CultureInfo.InvariantCulture)}]";
                    }

                    // Stamped just before the commit (the change is invisible to the processor until then), so
                    // the measured lag includes the commit itself: never an underestimate.
                    var at = Stopwatch.GetTimestamp();
                    foreach (var key in keys)
                    {
                        committed[key] = at;
                    }

                    await transaction.CommitAsync(cancellationToken);
                }

                written += perTick;
                tick++;
                var due = TimeSpan.FromMilliseconds(10 * tick) - watch.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due, cancellationToken);
                }
            }
        }

        var achieved = written / watch.Elapsed.TotalSeconds;
        // Let the processor apply the tail, then stop it.
        var deadline = Stopwatch.StartNew();
        while (!committed.IsEmpty && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20, cancellationToken);
        }

        await stop.CancelAsync();
        await running;
        return (lag, achieved);
    }

    /// <summary>Decorates the target: after a batch commits, records commit-to-apply lag of each key the writer committed.</summary>
    private sealed class LagTarget(ITargetStore inner, ConcurrentDictionary<string, long> committed, LatencyHistogram lag) : ITargetStore
    {
        public async Task<ApplyResult> ApplyAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken)
        {
            var result = await inner.ApplyAsync(writes, cancellationToken);
            var now = Stopwatch.GetTimestamp();
            foreach (var write in writes)
            {
                if (committed.TryRemove(write.Key.Text, out var at))
                {
                    lock (lag)
                    {
                        lag.Record(Stopwatch.GetElapsedTime(at, now).TotalMilliseconds);
                    }
                }
            }

            return result;
        }

        public Task<TargetDocument?> GetAsync(SourceKey key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);
    }

    internal static void Cleanup(string folder)
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the OS cleans the temp folder.
        }
    }
}
