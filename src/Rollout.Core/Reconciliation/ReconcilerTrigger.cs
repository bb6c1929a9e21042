using System.Globalization;
using Rollout.Core.DataPath;

namespace Rollout.Core.Reconciliation;

/// <summary>
/// Runs a reconciliation of one feature's stores at once with fixed settings, as a rollback or a schedule asks:
/// the run is audited like any other. Works over any adapters (the reconciler holds them). With a lease store, one
/// reconciliation of the feature runs at a time across threads and instances (a scheduled run and a rollback's, or
/// two instances of an app): a second caller is told it was skipped rather than resuming the same audit run
/// alongside the first.
/// </summary>
/// <param name="served">The feature the reconciler serves.</param>
/// <param name="reconciler">Makes a reconciler of the feature (one per run: a reconciler holds the state of its run).</param>
/// <param name="options">Reconciliation settings.</param>
/// <param name="leases">Leases, or null when the caller serializes runs itself.</param>
/// <param name="instance">This instance's name, in the lease's owner.</param>
/// <param name="progress">Called after each segment of a run with the run so far (for a progress display).</param>
public sealed class ReconcilerTrigger(string served, Func<Reconciler> reconciler, ReconcileOptions options, ILeaseStore? leases = null, string instance = "local", Action<ReconcileRun>? progress = null) : IReconciliationTrigger
{
    private static long _calls;

    /// <summary>How long the lease holds without renewal; it is renewed at a third of that while the run lasts.</summary>
    public static readonly TimeSpan LeaseDuration = TimeSpan.FromMinutes(2);

    /// <summary>Name of a feature's reconciliation lease.</summary>
    /// <param name="feature">Feature key.</param>
    public static string LeaseNameFor(string feature) => $"{feature}/reconcile";

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The feature is not the one this trigger serves.</exception>
    public async Task<ReconciliationOutcome> TriggerAsync(string feature, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reconciler);
        if (!string.Equals(feature, served, StringComparison.Ordinal))
        {
            throw new ArgumentException($"This reconciler serves feature '{served}', not '{feature}'.", nameof(feature));
        }

        var owner = string.Create(CultureInfo.InvariantCulture, $"{instance}/{Interlocked.Increment(ref _calls)}"); // one owner per call, even in one process
        var lease = LeaseNameFor(served);
        if (leases is not null && !await leases.TryAcquireAsync(lease, owner, LeaseDuration, cancellationToken).ConfigureAwait(false))
        {
            return new ReconciliationOutcome(null, 0, 0, 0, 0, $"skipped ({reason}): another reconciliation of '{served}' is running");
        }

        using var done = new CancellationTokenSource();
        var renewing = leases is null ? Task.CompletedTask : RenewAsync(leases, lease, owner, done.Token);
        try
        {
            var run = await reconciler().RunAsync(options, progress, cancellationToken).ConfigureAwait(false);
            var c = run.Counts;
            var summary = string.Create(CultureInfo.InvariantCulture,
                $"reconciliation run {run.Id} ({run.Mode.ToString().ToLowerInvariant()}): {c.Compared} keys compared, {c.Drifted} drifted, {c.Repaired} repaired, {c.Flagged} flagged");
            return new ReconciliationOutcome(run.Id, c.Compared, c.Drifted, c.Repaired, c.Flagged, summary);
        }
        finally
        {
            // Cancel, not CancelAsync, as in the feed's lease keeper: CancelAsync waits for the thread pool to run the callbacks.
#pragma warning disable CA1849
            done.Cancel();
#pragma warning restore CA1849
            await renewing.ConfigureAwait(false);
            if (leases is not null)
            {
                await leases.ReleaseAsync(lease, owner, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private static async Task RenewAsync(ILeaseStore leases, string lease, string owner, CancellationToken done)
    {
        try
        {
            while (true)
            {
                await Task.Delay(LeaseDuration / 3, done).ConfigureAwait(false);
                await leases.TryAcquireAsync(lease, owner, LeaseDuration, done).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            // The run ended.
        }
    }
}
