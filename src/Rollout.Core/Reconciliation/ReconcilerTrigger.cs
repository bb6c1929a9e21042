using System.Globalization;

namespace Rollout.Core.Reconciliation;

/// <summary>
/// Runs a reconciliation of one feature's stores at once with fixed settings, as a rollback or a schedule asks:
/// the run is audited like any other. Works over any adapters (the reconciler holds them).
/// </summary>
/// <param name="served">The feature the reconciler serves.</param>
/// <param name="reconciler">The feature's reconciler.</param>
/// <param name="options">Reconciliation settings.</param>
public sealed class ReconcilerTrigger(string served, Reconciler reconciler, ReconcileOptions options) : IReconciliationTrigger
{
    /// <inheritdoc />
    /// <exception cref="ArgumentException">The feature is not the one this trigger serves.</exception>
    public async Task<ReconciliationOutcome> TriggerAsync(string feature, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reconciler);
        if (!string.Equals(feature, served, StringComparison.Ordinal))
        {
            throw new ArgumentException($"This reconciler serves feature '{served}', not '{feature}'.", nameof(feature));
        }

        var run = await reconciler.RunAsync(options, null, cancellationToken).ConfigureAwait(false);
        var c = run.Counts;
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"reconciliation run {run.Id} ({run.Mode.ToString().ToLowerInvariant()}): {c.Compared} keys compared, {c.Drifted} drifted, {c.Repaired} repaired, {c.Flagged} flagged");
        return new ReconciliationOutcome(run.Id, c.Compared, c.Drifted, c.Repaired, c.Flagged, summary);
    }
}
