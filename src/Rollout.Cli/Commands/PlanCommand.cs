using System.CommandLine;
using System.Globalization;
using Rollout.Core.Plan;
using Rollout.Core.Spec;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary><c>rollout plan &lt;spec&gt;</c>: the phases, exposure, bake and approval steps as a table.</summary>
internal static class PlanCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var spec = new Argument<FileInfo>("spec") { Description = "Path to a *.rollout.json file." };
        var command = new Command("plan", "Print the steps a rollout will take: phases, exposure, read mode, bake, approvals, budgets.") { spec };
        command.SetAction(parse => Run(console, parse.GetValue(spec)!, parse.InvocationConfiguration.Error));
        return command;
    }

    private static int Run(IAnsiConsole console, FileInfo file, TextWriter error)
    {
        var (spec, code) = SpecFile.LoadValid(file, error);
        if (spec is null)
        {
            return code;
        }

        var plan = PhasePlan.FromSpec(spec);
        var table = new Table().Title($"Rollout plan: {Markup.Escape(spec.Feature)}")
            .AddColumns("#", "Phase", "Exposure", "Reads", "Bake", "Approval", "Skip bake");
        foreach (var phase in plan.Phases)
        {
            table.AddRow(
                (phase.Index + 1).ToString(CultureInfo.InvariantCulture),
                Markup.Escape(phase.Name),
                phase.Exposure.ToString(),
                phase.Reads.ToString().ToLowerInvariant(),
                IsoDuration.Format(phase.Bake),
                phase.ApprovalTimeout is { } t ? $"wait {IsoDuration.Format(t)}, then {phase.OnApprovalTimeout.ToString().ToLowerInvariant()}" : "-",
                phase.AllowSkipBake ? "allowed" : "-");
        }

        console.Write(table);
        var b = spec.Budgets;
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Budgets: error rate +{b.MaxErrorRateIncrease * 100:0.###} points over legacy, p95 <= {b.MaxP95LatencyMs:0.#} ms{(b.MaxP95LatencyIncreaseMs is { } i ? $" and <= legacy +{i:0.#} ms" : string.Empty)}, drift <= {b.MaxDriftRate:P3}, at least {b.MinSamples} samples"));
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Health evaluated every {IsoDuration.Format(plan.EvaluateEvery)}; insufficient data extends a bake by {IsoDuration.Format(plan.ExtendBakeBy)} up to {plan.MaxBakeExtensions} time(s), then halts."));
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Reconciliation every {spec.Reconciliation.Every}, repair {spec.Reconciliation.Repair.ToString().ToLowerInvariant()}, at most {spec.Reconciliation.MaxRowsPerSecond} rows/s. Gate timeout {spec.Gate.Timeout}."));
        console.WriteLine($"Longest possible duration (every bake extended, every approval waited out): {IsoDuration.Format(plan.WorstCaseDuration)}");
        return ExitCodes.Ok;
    }
}
