namespace Rollout.Core.Reconciliation;

/// <summary>What a triggered reconciliation did.</summary>
/// <param name="RunId">The audit run id, null when the run could not start.</param>
/// <param name="Compared">Keys compared.</param>
/// <param name="Drifted">Keys that drifted.</param>
/// <param name="Repaired">Keys repaired.</param>
/// <param name="Flagged">Keys flagged for a person.</param>
/// <param name="Summary">One line for people.</param>
public sealed record ReconciliationOutcome(long? RunId, long Compared, long Drifted, long Repaired, long Flagged, string Summary);

/// <summary>Starts a reconciliation of a feature's stores out of schedule (after a rollback, on demand).</summary>
public interface IReconciliationTrigger
{
    /// <summary>Runs (or queues) a reconciliation and reports what it did.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="reason">Why, kept with the run.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<ReconciliationOutcome> TriggerAsync(string feature, string reason, CancellationToken cancellationToken);
}
