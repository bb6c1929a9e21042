using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Rollout.Core;
using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Health;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;

namespace Rollout.Orchestration;

/// <summary>Sets phase, exposure and read mode in one transaction and records the change.</summary>
/// <param name="store">Exposure state store.</param>
/// <param name="logger">Logger.</param>
/// <param name="metrics">Instruments (optional).</param>
public sealed class ApplyExposureActivity(IExposureStateStore store, ILogger<ApplyExposureActivity> logger, RolloutMetrics? metrics = null) : TaskActivity<ApplyExposureInput, long>
{
    /// <inheritdoc />
    public override async Task<long> RunAsync(TaskActivityContext context, ApplyExposureInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var activity = RolloutMetrics.Activities.StartActivity("rollout.phase.apply");
        activity?.SetTag("rollout.feature", input.Feature);
        activity?.SetTag("rollout.phase", input.Phase);
        var exposure = new ExposureLevel(input.ExposureBuckets);
        activity?.SetTag("rollout.exposure", (double)exposure.Percent);
        var state = await store.SetStateAsync(input.Feature, input.Phase, exposure, input.Reads, input.Reason, CancellationToken.None);
        Log.ExposureApplied(logger, input.Feature, input.Phase, exposure.ToString(), input.Reads.ToString(), state.Generation, input.Reason);
        metrics?.RecordPhaseChange(input.Feature, input.Phase, (double)exposure.Percent, input.Reads.ToString().ToLowerInvariant(), input.Reason.StartsWith("rollback", StringComparison.Ordinal));
        return state.Generation;
    }
}

/// <summary>Reads a telemetry window and the latest drift, and returns the core's verdict.</summary>
/// <param name="source">Health window source.</param>
/// <param name="logger">Logger.</param>
/// <param name="metrics">Instruments (optional).</param>
public sealed class EvaluateHealthActivity(IHealthWindowSource source, ILogger<EvaluateHealthActivity> logger, RolloutMetrics? metrics = null) : TaskActivity<EvaluateHealthInput, VerdictView>
{
    /// <inheritdoc />
    public override async Task<VerdictView> RunAsync(TaskActivityContext context, EvaluateHealthInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var window = await source.QueryWindowAsync(input.Feature, input.Window.From, input.Window.To, CancellationToken.None);
        if (input.Baseline is { } b && window.Legacy.Count < input.Budgets.MinSamples)
        {
            var baseline = await source.QueryWindowAsync(input.Feature, b.From, b.To, CancellationToken.None);
            window = window with { Baseline = baseline.Legacy };
        }

        var verdict = HealthEvaluator.Evaluate(input.Budgets, window, input.CandidateExposed);
        var view = VerdictView.From(verdict, input.Window.To, input.Phase, input.Final);
        Log.HealthEvaluated(logger, input.Feature, input.Phase, view.Kind, view.Summary);
        metrics?.RecordVerdict(input.Feature, input.Phase, view.Kind, input.Final);
        return view;
    }
}

/// <summary>Starts a reconciliation out of schedule (after a rollback) and reports what it did.</summary>
/// <param name="trigger">Reconciliation trigger.</param>
/// <param name="logger">Logger.</param>
public sealed class TriggerReconciliationActivity(IReconciliationTrigger trigger, ILogger<TriggerReconciliationActivity> logger) : TaskActivity<TriggerReconciliationInput, ReconciliationOutcome>
{
    /// <inheritdoc />
    public override async Task<ReconciliationOutcome> RunAsync(TaskActivityContext context, TriggerReconciliationInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var outcome = await trigger.TriggerAsync(input.Feature, input.Reason, CancellationToken.None);
        Log.ReconciliationTriggered(logger, input.Feature, outcome.Summary);
        return outcome;
    }
}

/// <summary>Appends entries to the rollout's journal (idempotent: a retried call keeps one of each).</summary>
/// <param name="journal">The journal.</param>
public sealed class RecordJournalActivity(IRolloutJournal journal) : TaskActivity<IReadOnlyList<RolloutJournalEntry>, int>
{
    /// <inheritdoc />
    public override async Task<int> RunAsync(TaskActivityContext context, IReadOnlyList<RolloutJournalEntry> input)
    {
        ArgumentNullException.ThrowIfNull(input);
        foreach (var entry in input)
        {
            await journal.AppendAsync(entry, CancellationToken.None);
        }

        return input.Count;
    }
}
