using System.Diagnostics;
using System.Globalization;
using SortKey = Rollout.Core.DataPath.SortKey;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;
using Spectre.Console;

namespace Rollout.Cli.Bench;

/// <summary>Settings of <c>rollout bench reconcile</c>.</summary>
internal sealed record ReconcileBenchOptions(int Rows, IReadOnlyList<double> DriftPercents, string Folder);

/// <summary>One measured mode at one drift level.</summary>
internal sealed record ReconcileMeasurement(double DriftPercent, string Mode, double Seconds, long FetchedInFull, long Found, long PeakWorkingSetBytes);

/// <summary>
/// The reconciliation benchmark: one source of N rows synced to the target, then drift injected at growing
/// levels (the target holds an older version of every k-th row, as after lost changes). At each level, in
/// report-only mode so that every method sees the same drift: quick, deep, a naive full compare (read every
/// row of both stores, translate, compare the documents) and a floor that only reads the key column of both.
/// </summary>
internal static class ReconcileBench
{
    public static async Task<IReadOnlyList<ReconcileMeasurement>> RunAsync(ReconcileBenchOptions options, Action<string> log, CancellationToken cancellationToken)
    {
        var spec = RolloutSpecLoader.Load(DualWriteBench.SpecJson).Spec!;
        Directory.CreateDirectory(options.Folder);
        await using var rollout = EmbeddedRollout.Open(options.Folder, spec, TimeProvider.System);
        log($"generating and syncing {options.Rows:N0} rows…");
        await SourceSeeder.CreateTableAsync(rollout, cancellationToken);
        await rollout.InitializeAsync(cancellationToken);
        await SourceSeeder.SeedAsync(rollout, options.Rows, seed: 42, cancellationToken: cancellationToken);
        await rollout.Processor("bench", 5000).DrainAsync(cancellationToken);

        var results = new List<ReconcileMeasurement>();
        long drifted = 0;
        foreach (var percent in options.DriftPercents.Order())
        {
            var wanted = (long)Math.Round(options.Rows * percent / 100);
            drifted = await InjectAsync(rollout, options.Rows, drifted, wanted, cancellationToken);
            log($"drift {percent}% ({drifted:N0} rows)");
            results.Add(await MeasureAsync(percent, "floor (keys only)", () => FloorAsync(rollout, cancellationToken)));
            results.Add(await MeasureAsync(percent, "naive full compare", () => NaiveAsync(rollout, cancellationToken)));
            foreach (var depth in new[] { ReconcileDepth.Quick, ReconcileDepth.Deep })
            {
                results.Add(await MeasureAsync(percent, depth.ToString().ToLowerInvariant(), async () =>
                {
                    var run = await rollout.Reconciler().RunAsync(new ReconcileOptions { Depth = depth, Mode = RepairMode.Report, SegmentSize = depth == ReconcileDepth.Quick ? 1000 : 5000 }, null, cancellationToken);
                    return (run.Counts.TargetRowsRead + run.Counts.FetchedInFull, run.Counts.Drifted);
                }));
            }
        }

        return results;
    }

    public static void Print(IAnsiConsole console, int rows, IReadOnlyList<ReconcileMeasurement> results)
    {
        var table = new Table().Title($"rollout bench reconcile ({rows:N0} rows)")
            .AddColumns("drift", "method", "time", "vs naive", "vs floor", "rows read one by one", "drift found", "peak working set");
        foreach (var level in results.GroupBy(r => r.DriftPercent))
        {
            var naive = level.Single(r => r.Mode.StartsWith("naive", StringComparison.Ordinal)).Seconds;
            var floor = level.Single(r => r.Mode.StartsWith("floor", StringComparison.Ordinal)).Seconds;
            foreach (var r in level)
            {
                table.AddRow(
                    string.Create(CultureInfo.InvariantCulture, $"{r.DriftPercent}%"), r.Mode, string.Create(CultureInfo.InvariantCulture, $"{r.Seconds:F2} s"),
                    string.Create(CultureInfo.InvariantCulture, $"{naive / r.Seconds:F1}x faster"), string.Create(CultureInfo.InvariantCulture, $"{r.Seconds / floor:F1}x floor"),
                    r.FetchedInFull.ToString("N0", CultureInfo.InvariantCulture), r.Found.ToString("N0", CultureInfo.InvariantCulture),
                    string.Create(CultureInfo.InvariantCulture, $"{r.PeakWorkingSetBytes / 1024.0 / 1024.0:F0} MB"));
            }
        }

        console.Write(table);
    }

    /// <summary>Makes the target hold an older version of every k-th row (version − 1, with the digests and marker the pipeline would have written for it).</summary>
    private static async Task<long> InjectAsync(EmbeddedRollout rollout, int rows, long already, long wanted, CancellationToken cancellationToken)
    {
        if (wanted <= already)
        {
            return already;
        }

        // Pick rows on a stride that is coprime with the earlier ones, skipping rows already drifted.
        await using var connection = await rollout.TargetDatabase.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"""
            UPDATE documents_orders SET source_version = source_version - 1, digest = (digest + 7919) % 2147483648,
              quick_digest = {QuickDigest.Sql("@id", "(source_version - 1)")}, etag = etag + 1, pipeline_etag = etag + 1
            WHERE sort_key = @sort AND source_version > 0
            """;
        var sort = command.CreateParameter();
        sort.ParameterName = "@sort";
        command.Parameters.Add(sort);
        var key = command.CreateParameter();
        key.ParameterName = "@id";
        command.Parameters.Add(key);
        var stride = Math.Max(1, rows / (int)wanted);
        long changed = already;
        var marked = new HashSet<long>();
        for (long id = 1 + (already == 0 ? 0 : stride / 2); id <= rows && changed < wanted; id += stride)
        {
            sort.Value = SourceKey.From([id]).Sort;
            key.Value = id;
            if (marked.Add(id))
            {
                changed += command.ExecuteNonQuery();
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return changed;
    }

    private static async Task<ReconcileMeasurement> MeasureAsync(double percent, string mode, Func<Task<(long Fetched, long Found)>> work)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        NativeMemory.ReturnFreeToSystem();
        using var process = Process.GetCurrentProcess();
        long peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                process.Refresh();
                peak = Math.Max(peak, process.WorkingSet64);
                await Task.Delay(20, CancellationToken.None);
            }
        });
        var watch = Stopwatch.StartNew();
        var (fetched, found) = await work();
        var seconds = watch.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await sampler;
        return new ReconcileMeasurement(percent, mode, seconds, fetched, found, peak);
    }

    private static async Task<(long, long)> FloorAsync(EmbeddedRollout rollout, CancellationToken cancellationToken)
    {
        long keys = 0;
        foreach (var (database, sql) in new[]
        {
            (rollout.SourceDatabase, "SELECT OrderId FROM Orders ORDER BY OrderId"),
            (rollout.TargetDatabase, "SELECT sort_key FROM documents_orders ORDER BY sort_key"),
        })
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (reader.Read())
            {
                _ = reader.GetValue(0);
                keys++;
            }
        }

        return (0, 0);
    }

    /// <summary>Reads every row of both stores, translates each source row and compares it with the stored document text.</summary>
    private static async Task<(long, long)> NaiveAsync(EmbeddedRollout rollout, CancellationToken cancellationToken)
    {
        long fetched = 0, different = 0;
        await using var enumerator = rollout.Target.ReadAllAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        var hasTarget = await enumerator.MoveNextAsync();
        SourceKey? after = null;
        while (true)
        {
            var batch = await rollout.Source.ReadBatchAsync(after, 5000, cancellationToken);
            if (batch.Count == 0)
            {
                break;
            }

            foreach (var row in batch)
            {
                fetched++;
                var json = rollout.Translator.Translate(row.Row).Document?.JsonText;
                while (hasTarget && SortKey.Compare(enumerator.Current.Key.Sort, row.Key.Sort) < 0)
                {
                    fetched++;
                    different += enumerator.Current.IsTombstone ? 0 : 1;
                    hasTarget = await enumerator.MoveNextAsync();
                }

                if (hasTarget && SortKey.Compare(enumerator.Current.Key.Sort, row.Key.Sort) == 0)
                {
                    fetched++;
                    different += enumerator.Current.Json == json && enumerator.Current.SourceVersion == row.Version ? 0 : 1;
                    hasTarget = await enumerator.MoveNextAsync();
                }
                else
                {
                    different++;
                }
            }

            after = batch[^1].Key;
        }

        return (fetched, different);
    }
}

/// <summary>
/// Native counterpart of the <see cref="GC.Collect()"/> before each measurement. SQLite allocates with malloc from
/// whichever thread reads, and glibc keeps memory freed in its per-thread arenas: without this, the whole-process working
/// set a measurement starts from grew by about 60 MB of free native memory over the run (the keys-only floor itself,
/// which allocates nothing, went from 124 MB to 180 MB), and a method's peak included what earlier steps had freed.
/// </summary>
internal static class NativeMemory
{
    public static void ReturnFreeToSystem()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to return this way.
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    private static extern int MallocTrim(nuint pad);
}
