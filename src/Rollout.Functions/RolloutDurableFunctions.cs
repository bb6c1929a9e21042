using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;
using Rollout.Orchestration;

namespace Rollout.Functions;

/// <summary>
/// The rollout orchestrator and its activities registered with Durable Functions: thin <c>[Function]</c> wrappers
/// that run the very classes of <c>Rollout.Orchestration</c> (the class-based source generator is not available
/// here), under the names the orchestrator calls them by.
/// </summary>
public static class RolloutDurableFunctions
{
    /// <summary>The rollout orchestration.</summary>
    /// <param name="context">The orchestration context.</param>
    [Function(nameof(RolloutOrchestrator))]
    public static Task<RolloutResult?> RunOrchestratorAsync([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var input = context.GetInput<RolloutInput>() ?? throw new InvalidOperationException("The rollout orchestration needs its input (a RolloutInput).");
        return new RolloutOrchestrator().RunAsync(context, input);
    }

    /// <summary>Sets exposure and read mode.</summary>
    /// <param name="input">Input.</param>
    /// <param name="instanceId">The orchestration's instance id (the activity trigger's binding data).</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(ApplyExposureActivity))]
    public static Task<long> ApplyExposureAsync([ActivityTrigger] ApplyExposureInput input, string instanceId, FunctionContext function) =>
        Run<ApplyExposureActivity, ApplyExposureInput, long>(function?.InstanceServices, instanceId, input);

    /// <summary>Evaluates health.</summary>
    /// <param name="input">Input.</param>
    /// <param name="instanceId">The orchestration's instance id (the activity trigger's binding data).</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(EvaluateHealthActivity))]
    public static Task<VerdictView> EvaluateHealthAsync([ActivityTrigger] EvaluateHealthInput input, string instanceId, FunctionContext function) =>
        Run<EvaluateHealthActivity, EvaluateHealthInput, VerdictView>(function?.InstanceServices, instanceId, input);

    /// <summary>Triggers a reconciliation.</summary>
    /// <param name="input">Input.</param>
    /// <param name="instanceId">The orchestration's instance id (the activity trigger's binding data).</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(TriggerReconciliationActivity))]
    public static Task<ReconciliationOutcome> TriggerReconciliationAsync([ActivityTrigger] TriggerReconciliationInput input, string instanceId, FunctionContext function) =>
        Run<TriggerReconciliationActivity, TriggerReconciliationInput, ReconciliationOutcome>(function?.InstanceServices, instanceId, input);

    /// <summary>Appends journal entries.</summary>
    /// <param name="input">Input.</param>
    /// <param name="instanceId">The orchestration's instance id (the activity trigger's binding data).</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(RecordJournalActivity))]
    public static Task<int> RecordJournalAsync([ActivityTrigger] RolloutJournalEntry[] input, string instanceId, FunctionContext function) =>
        Run<RecordJournalActivity, IReadOnlyList<RolloutJournalEntry>, int>(function?.InstanceServices, instanceId, input);

    /// <summary>
    /// Runs an activity class with a context that carries its name and the instance id of the orchestration that called
    /// it (bound by name from the activity trigger's binding data, as the Durable Task source generator does; the
    /// function's invocation id is another thing).
    /// </summary>
    internal static Task<TOutput> Run<TActivity, TInput, TOutput>(IServiceProvider? services, string instanceId, TInput input)
        where TActivity : TaskActivity<TInput, TOutput>
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var activity = ActivatorUtilities.CreateInstance<TActivity>(services);
        return activity.RunAsync(new FunctionActivityContext(typeof(TActivity).Name, instanceId), input);
    }

    private sealed class FunctionActivityContext(string name, string instanceId) : TaskActivityContext
    {
        public override TaskName Name => name;

        public override string InstanceId => instanceId;
    }
}
