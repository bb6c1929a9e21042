using System.Diagnostics;
using System.Globalization;
using SortKey = Rollout.Core.DataPath.SortKey;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Microsoft.Data.Sqlite;
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
    /// <summary>The methods, in the order they are measured at each drift level.</summary>
    public static readonly IReadOnlyList<string> Methods = ["floor", "naive", "quick", "quick-segments", "deep"];

    public static async Task<IReadOnlyList<ReconcileMeasurement>> RunAsync(ReconcileBenchOptions options, Action<string> log, CancellationToken cancellationToken)
    {
        var spec = Spec();
        Directory.CreateDirectory(options.Folder);
        log($"generating and syncing {options.Rows:N0} rows…");
        await using (var rollout = EmbeddedRollout.Open(options.Folder, spec, TimeProvider.System))
        {
            await SourceSeeder.CreateTableAsync(rollout, cancellationToken);
            await rollout.InitializeAsync(cancellationToken);
            await SourceSeeder.SeedAsync(rollout, options.Rows, seed: 42, cancellationToken: cancellationToken);
            await rollout.Processor("bench", 5000).DrainAsync(cancellationToken);
        }

        var results = new List<ReconcileMeasurement>();
        long drifted = 0;
        foreach (var percent in options.DriftPercents.Order())
        {
            var wanted = (long)Math.Round(options.Rows * percent / 100);
            await using (var rollout = EmbeddedRollout.Open(options.Folder, spec, TimeProvider.System))
            {
                drifted = await InjectAsync(rollout, options.Rows, drifted, wanted, cancellationToken);
            }

            SqliteConnection.ClearAllPools();
            log($"drift {percent}% ({drifted:N0} rows)");
            foreach (var method in Methods)
            {
                // Each method in a process of its own: its peak memory is its own, not what seeding or another method left.
                var measured = await MeasureInChildAsync(options.Folder, method, cancellationToken);
                results.Add(measured with { DriftPercent = percent });
            }
        }

        return results;
    }

    /// <summary>
    /// <c>rollout bench reconcile-step</c>, in the child process: runs one method on the folder twice (the first run warms
    /// the JIT and the OS cache, as an earlier method did for the next when all ran in one process) and measures the second:
    /// time, rows read one by one, drift found, and the process's peak working set during it.
    /// </summary>
    public static async Task<ReconcileMeasurement> MeasureStepAsync(string folder, string method, CancellationToken cancellationToken)
    {
        await using var rollout = EmbeddedRollout.Open(folder, Spec(), TimeProvider.System);
        Func<Task<(long Fetched, long Found)>> work = method switch
        {
            "floor" => () => FloorAsync(rollout, cancellationToken),
            "naive" => () => NaiveAsync(rollout, cancellationToken),
            "quick" => () => ReconcileAsync(rollout, ReconcileDepth.Quick, cancellationToken),
            "quick-segments" => () => ReconcileAsync(rollout, ReconcileDepth.Quick, cancellationToken, useBuckets: false),
            "deep" => () => ReconcileAsync(rollout, ReconcileDepth.Deep, cancellationToken),
            _ => throw new ArgumentException($"unknown method '{method}' (one of {string.Join(", ", Methods)})", nameof(method)),
        };
        await work();
        return await MeasureAsync(0, Label(method), work);
    }

    private static RolloutSpec Spec() => RolloutSpecLoader.Load(DualWriteBench.SpecJson).Spec!;

    private static string Label(string method) => method switch
    {
        "floor" => "floor (keys only)",
        "naive" => "naive full compare",
        "quick-segments" => "quick --no-buckets",
        _ => method,
    };

    private static async Task<(long, long)> ReconcileAsync(EmbeddedRollout rollout, ReconcileDepth depth, CancellationToken cancellationToken, bool useBuckets = true)
    {
        var options = new ReconcileOptions { Depth = depth, Mode = RepairMode.Report, SegmentSize = depth == ReconcileDepth.Quick ? 1000 : 5000, UseBuckets = useBuckets };
        var run = await rollout.Reconciler().RunAsync(options, null, cancellationToken);
        return (run.Counts.TargetRowsRead + run.Counts.FetchedInFull, run.Counts.Drifted);
    }

    private static async Task<ReconcileMeasurement> MeasureInChildAsync(string folder, string method, CancellationToken cancellationToken)
    {
        var start = ChildProcess.StartInfo(["bench", "reconcile-step", "--data", folder, "--method", method]);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        var output = child.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = child.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await child.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            child.Kill(entireProcessTree: true);
            throw;
        }

        var text = await output;
        if (child.ExitCode != 0 || System.Text.Json.JsonSerializer.Deserialize(text.Trim(), BenchJsonContext.Default.ReconcileMeasurement) is not { } measured)
        {
            throw new InvalidOperationException($"the {method} measurement failed (exit code {child.ExitCode}): {(await error).Trim()} {text.Trim()}");
        }

        return measured;
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
        var exactPeak = NativeMemory.ResetPeak();
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
        if (exactPeak)
        {
            // The kernel's high-water mark since the reset: exact, where sampling every 20 ms may miss a spike.
            process.Refresh();
            peak = Math.Max(peak, process.PeakWorkingSet64);
        }

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

    /// <summary>
    /// Resets the process's peak resident set size (VmHWM) on Linux, so that <see cref="Process.PeakWorkingSet64"/> reads the
    /// peak from now on; false where that is not possible (then the peak is sampled).
    /// </summary>
    public static bool ResetPeak()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    private static extern int MallocTrim(nuint pad);
}

/// <summary>Starts this program again as a child process: the apphost where it runs as one, else the dotnet host with rollout.dll.</summary>
internal static class ChildProcess
{
    public static ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        var assembly = typeof(ChildProcess).Assembly.Location;
        var self = Environment.ProcessPath;
        var isApphost = self is not null && Path.GetFileNameWithoutExtension(self) == Path.GetFileNameWithoutExtension(assembly);
        var start = new ProcessStartInfo(isApphost ? self! : DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (!isApphost)
        {
            start.ArgumentList.Add(assembly);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    private static string DotnetHost()
    {
        // Under 'dotnet test' or 'dotnet rollout.dll' this process runs on the dotnet host already; the SDK also names it.
        if (Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet")
        {
            return path;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(ReconcileMeasurement))]
internal sealed partial class BenchJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
