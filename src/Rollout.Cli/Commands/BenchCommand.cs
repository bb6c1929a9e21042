using System.CommandLine;
using Rollout.Cli.Bench;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary><c>rollout bench &lt;dualwrite&gt;</c>: macro benchmarks on the embedded default.</summary>
internal static class BenchCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("bench", "Macro benchmarks on the embedded default; results go in docs/benchmarks.md.");
        command.Subcommands.Add(DualWrite(console));
        command.Subcommands.Add(Reconcile(console));
        command.Subcommands.Add(ReconcileStep(console));
        command.Subcommands.Add(Rollback(console));
        command.Subcommands.Add(Gate(console));
        return command;
    }

    private static Command Gate(IAnsiConsole console)
    {
        var rows = new Option<int>("--rows") { Description = "Rows in the generated source.", DefaultValueFactory = _ => 10_000 };
        var seconds = new Option<double>("--seconds") { Description = "Measurement time per method.", DefaultValueFactory = _ => 3 };
        var command = new Command("gate", "What the gate costs a request: gated writes and reads in each mode vs the same plain SQL, side by side.") { rows, seconds };
        command.SetAction(async (parse, ct) =>
        {
            var options = new GateBenchOptions(parse.GetValue(rows), TimeSpan.FromSeconds(parse.GetValue(seconds)), Path.Combine(Path.GetTempPath(), $"rollout-bench-gate-{Environment.ProcessId}"));
            if (options.Rows < 1 || options.Duration <= TimeSpan.Zero)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: need --rows >= 1 and --seconds > 0");
                return ExitCodes.UsageOrIo;
            }

            try
            {
                var results = await GateBench.RunAsync(options, line => console.WriteLine(line), ct);
                GateBench.Print(console, options, results);
                return ExitCodes.Ok;
            }
            finally
            {
                DualWriteBench.Cleanup(options.Folder);
            }
        });
        return command;
    }

    private static Command Rollback(IAnsiConsole console)
    {
        var trials = new Option<int>("--trials") { Description = "Rollbacks to measure.", DefaultValueFactory = _ => 5 };
        var interval = new Option<double>("--interval-seconds") { Description = "Health evaluation interval (the spec's evaluateEvery).", DefaultValueFactory = _ => 5 };
        var rps = new Option<int>("--rps") { Description = "Requests per second on each path.", DefaultValueFactory = _ => 200 };
        var command = new Command("rollback", "Detection-to-rollback time: a real rollout, a fault injected in the canary, time until exposure 0.") { trials, interval, rps };
        command.SetAction(async (parse, ct) =>
        {
            var options = new RollbackBenchOptions(
                parse.GetValue(trials), TimeSpan.FromSeconds(parse.GetValue(interval)), parse.GetValue(rps),
                Path.Combine(Path.GetTempPath(), $"rollout-bench-rollback-{Environment.ProcessId}"));
            if (options.Trials < 1 || options.Interval < TimeSpan.FromSeconds(0.1) || options.RequestsPerSecond < 100)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: need --trials >= 1, --interval-seconds >= 0.1 and --rps >= 100");
                return ExitCodes.UsageOrIo;
            }

            if (options.RequestsPerSecond * options.Interval.TotalSeconds * 3 < 2 * 500)
            {
                // A health window spans three intervals and must hold the budget's 500 samples, with room to spare.
                parse.InvocationConfiguration.Error.WriteLine("error: too little traffic to judge health: need --rps x 3 x --interval-seconds >= 1000 (a window of three intervals must hold the 500 samples the budget asks for); raise --rps");
                return ExitCodes.UsageOrIo;
            }

            try
            {
                var results = await RollbackBench.RunAsync(options, line => console.WriteLine(line), ct);
                RollbackBench.Print(console, options, results);
                return ExitCodes.Ok;
            }
            finally
            {
                DualWriteBench.Cleanup(options.Folder);
            }
        });
        return command;
    }

    private static Command Reconcile(IAnsiConsole console)
    {
        var rows = new Option<int>("--rows") { Description = "Rows in the generated source.", DefaultValueFactory = _ => 1_000_000 };
        var drift = new Option<string>("--drift") { Description = "Drift levels in percent, comma-separated.", DefaultValueFactory = _ => "0.01,0.1,1,10" };
        var keep = new Option<DirectoryInfo?>("--data") { Description = "Folder to generate in (kept); a temporary folder, deleted afterwards, by default." };
        var command = new Command("reconcile", "Quick and deep reconciliation vs a naive full compare and a keys-only floor, at several drift levels.") { rows, drift, keep };
        command.SetAction(async (parse, ct) =>
        {
            double[] levels;
            try
            {
                levels = [.. parse.GetValue(drift)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(l => double.Parse(l, System.Globalization.CultureInfo.InvariantCulture))];
            }
            catch (FormatException)
            {
                levels = [];
            }

            var count = parse.GetValue(rows);
            if (count < 100 || levels.Length == 0 || levels.Any(l => l is <= 0 or > 50))
            {
                parse.InvocationConfiguration.Error.WriteLine("error: need --rows >= 100 and --drift levels in (0, 50], e.g. --drift 0.01,0.1,1,10");
                return ExitCodes.UsageOrIo;
            }

            var folder = parse.GetValue(keep)?.FullName ?? Path.Combine(Path.GetTempPath(), $"rollout-bench-reconcile-{Environment.ProcessId}");
            if (!OutputFolder.TryCreate(folder, "the benchmark's folder", "--data", parse.InvocationConfiguration.Error))
            {
                return ExitCodes.UsageOrIo;
            }

            try
            {
                var results = await ReconcileBench.RunAsync(new ReconcileBenchOptions(count, levels, folder), line => console.WriteLine(line), ct);
                ReconcileBench.Print(console, count, results);
                return ExitCodes.Ok;
            }
            finally
            {
                if (parse.GetValue(keep) is null)
                {
                    DualWriteBench.Cleanup(folder);
                }
            }
        });
        return command;
    }

    /// <summary>One method of <c>bench reconcile</c> in a process of its own (started by it; hidden from help).</summary>
    private static Command ReconcileStep(IAnsiConsole console)
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "The folder bench reconcile generated.", Required = true };
        var method = new Option<string>("--method") { Description = "floor, naive, quick or deep.", Required = true };
        method.AcceptOnlyFromAmong([.. ReconcileBench.Methods]);
        var command = new Command("reconcile-step", "Measures one method of bench reconcile on its folder and prints the measurement as JSON.") { data, method };
        command.Hidden = true;
        command.SetAction(async (parse, ct) =>
        {
            var measured = await ReconcileBench.MeasureStepAsync(parse.GetValue(data)!.FullName, parse.GetValue(method)!, ct);
            JsonOutput.Write(console, System.Text.Json.JsonSerializer.Serialize(measured, BenchJsonContext.Default.ReconcileMeasurement));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DualWrite(IAnsiConsole console)
    {
        var changes = new Option<int>("--changes") { Description = "Changes in the generated source.", DefaultValueFactory = _ => 1_000_000 };
        var baseline = new Option<int>("--baseline-changes") { Description = "Changes the naive baseline applies (the first ones of the same feed).", DefaultValueFactory = _ => 100_000 };
        var batch = new Option<int>("--batch") { Description = "Batch size of the batched processor.", DefaultValueFactory = _ => 5000 };
        var rate = new Option<int>("--rate") { Description = "Offered load for the lag measurement, changes/s.", DefaultValueFactory = _ => 5000 };
        var seconds = new Option<int>("--lag-seconds") { Description = "Duration of the lag measurement.", DefaultValueFactory = _ => 20 };
        var keep = new Option<DirectoryInfo?>("--data") { Description = "Folder to generate in (kept); a temporary folder, deleted afterwards, by default." };
        var command = new Command("dualwrite", "Batched dual-write processor vs one change per transaction, and commit-to-apply lag at a fixed load.")
        {
            changes, baseline, batch, rate, seconds, keep,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new DualWriteBenchOptions(
                parse.GetValue(changes), parse.GetValue(baseline), parse.GetValue(batch), parse.GetValue(rate),
                TimeSpan.FromSeconds(parse.GetValue(seconds)),
                parse.GetValue(keep)?.FullName ?? Path.Combine(Path.GetTempPath(), $"rollout-bench-{Environment.ProcessId}"));
            if (options.Changes < 1 || options.BaselineChanges < 1 || options.BaselineChanges > options.Changes || options.BatchSize < 1 || options.OfferedRate < 100)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: need --changes >= 1, 1 <= --baseline-changes <= --changes, --batch >= 1 and --rate >= 100");
                return ExitCodes.UsageOrIo;
            }

            if (!OutputFolder.TryCreate(options.Folder, "the benchmark's folder", "--data", parse.InvocationConfiguration.Error))
            {
                return ExitCodes.UsageOrIo;
            }

            try
            {
                var result = await DualWriteBench.RunAsync(options, line => console.WriteLine(line), ct);
                DualWriteBench.Print(console, options, result);
                return ExitCodes.Ok;
            }
            finally
            {
                if (parse.GetValue(keep) is null)
                {
                    DualWriteBench.Cleanup(options.Folder);
                }
            }
        });
        return command;
    }
}
