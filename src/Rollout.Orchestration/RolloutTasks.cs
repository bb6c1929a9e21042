using Microsoft.DurableTask;

namespace Rollout.Orchestration;

/// <summary>Registers the rollout orchestrator and its activities with a Durable Task worker.</summary>
public static class RolloutTasks
{
    /// <summary>Adds every orchestrator and activity of a rollout.</summary>
    /// <param name="registry">The worker's registry.</param>
    public static DurableTaskRegistry AddRolloutTasks(this DurableTaskRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return registry
            .AddOrchestrator<RolloutOrchestrator>()
            .AddActivity<ApplyExposureActivity>()
            .AddActivity<EvaluateHealthActivity>()
            .AddActivity<TriggerReconciliationActivity>()
            .AddActivity<RecordJournalActivity>();
    }
}
