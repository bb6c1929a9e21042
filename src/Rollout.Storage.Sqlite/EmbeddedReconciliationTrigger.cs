using Rollout.Core.Reconciliation;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// Runs a quick reconciliation of the embedded stores at once (with the spec's repair mode and rate limit), as
/// a rollback asks: the run is audited like any other, and its drift goes to the telemetry. After a rollback every
/// difference is repaired, changes still in flight included (the version guard makes that harmless).
/// </summary>
/// <param name="rollout">The embedded rollout.</param>
/// <param name="options">Reconciliation settings; the spec's quick settings when null.</param>
/// <param name="progress">Called after each segment of a run with the run so far (for a progress display).</param>
public sealed class EmbeddedReconciliationTrigger(EmbeddedRollout rollout, ReconcileOptions? options = null, Action<ReconcileRun>? progress = null) : IReconciliationTrigger
{
    /// <inheritdoc />
    public Task<ReconciliationOutcome> TriggerAsync(string feature, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        return new ReconcilerTrigger(rollout.Spec.Feature, () => rollout.Reconciler(), options ?? rollout.ReconcileOptions(ReconcileDepth.Quick), rollout.Target, progress: progress)
            .TriggerAsync(feature, reason, cancellationToken);
    }
}
