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
