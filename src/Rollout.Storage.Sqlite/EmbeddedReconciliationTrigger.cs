using System.Globalization;
using Rollout.Core.Reconciliation;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// Runs a quick reconciliation of the embedded stores at once (with the spec's repair mode and rate limit), as
/// a rollback asks: the run is audited like any other, and its drift goes to the telemetry. After a rollback every
/// difference is repaired, changes still in flight included (the version guard makes that harmless).
/// </summary>
/// <param name="rollout">The embedded rollout.</param>
/// <param name="options">Reconciliation settings; the spec's quick settings when null.</param>
public sealed class EmbeddedReconciliationTrigger(EmbeddedRollout rollout, ReconcileOptions? options = null) : IReconciliationTrigger
{
    /// <inheritdoc />
    public async Task<ReconciliationOutcome> TriggerAsync(string feature, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        if (!string.Equals(feature, rollout.Spec.Feature, StringComparison.Ordinal))
        {
            throw new ArgumentException($"This store holds feature '{rollout.Spec.Feature}', not '{feature}'.", nameof(feature));
        }

        var run = await rollout.Reconciler().RunAsync(options ?? rollout.ReconcileOptions(ReconcileDepth.Quick), null, cancellationToken);
        var c = run.Counts;
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"reconciliation run {run.Id} ({run.Mode.ToString().ToLowerInvariant()}): {c.Compared} keys compared, {c.Drifted} drifted, {c.Repaired} repaired, {c.Flagged} flagged");
        return new ReconciliationOutcome(run.Id, c.Compared, c.Drifted, c.Repaired, c.Flagged, summary);
    }
}
