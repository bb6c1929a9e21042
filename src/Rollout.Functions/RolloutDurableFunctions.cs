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
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(ApplyExposureActivity))]
    public static Task<long> ApplyExposureAsync([ActivityTrigger] ApplyExposureInput input, FunctionContext function) =>
        Run<ApplyExposureActivity, ApplyExposureInput, long>(function, input);

    /// <summary>Evaluates health.</summary>
    /// <param name="input">Input.</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(EvaluateHealthActivity))]
    public static Task<VerdictView> EvaluateHealthAsync([ActivityTrigger] EvaluateHealthInput input, FunctionContext function) =>
        Run<EvaluateHealthActivity, EvaluateHealthInput, VerdictView>(function, input);

    /// <summary>Triggers a reconciliation.</summary>
    /// <param name="input">Input.</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(TriggerReconciliationActivity))]
    public static Task<ReconciliationOutcome> TriggerReconciliationAsync([ActivityTrigger] TriggerReconciliationInput input, FunctionContext function) =>
        Run<TriggerReconciliationActivity, TriggerReconciliationInput, ReconciliationOutcome>(function, input);

    /// <summary>Appends journal entries.</summary>
    /// <param name="input">Input.</param>
    /// <param name="function">The function context (its services).</param>
    [Function(nameof(RecordJournalActivity))]
    public static Task<int> RecordJournalAsync([ActivityTrigger] RolloutJournalEntry[] input, FunctionContext function) =>
        Run<RecordJournalActivity, IReadOnlyList<RolloutJournalEntry>, int>(function, input);

    private static Task<TOutput> Run<TActivity, TInput, TOutput>(FunctionContext function, TInput input)
        where TActivity : TaskActivity<TInput, TOutput>
    {
        ArgumentNullException.ThrowIfNull(function);
        var activity = ActivatorUtilities.CreateInstance<TActivity>(function.InstanceServices);
        return activity.RunAsync(new FunctionActivityContext(typeof(TActivity).Name, function.InvocationId), input);
    }

    private sealed class FunctionActivityContext(string name, string instanceId) : TaskActivityContext
    {
        public override TaskName Name => name;

        public override string InstanceId => instanceId;
    }
}
