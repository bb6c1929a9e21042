using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// Changes the dual-write pipeline has not applied yet are in flight, not drift, when reconciliation knows the
/// pipeline's checkpoint: a busy feed must not read as drift to the health gate. Changes at or below the
/// checkpoint that the target lacks are still drift.
/// </summary>
public sealed class InFlightReconciliationTests
{
    [Theory]
    [InlineData(ReconcileDepth.Quick)]
    [InlineData(ReconcileDepth.Deep)]
    public async Task Changes_after_the_pipeline_checkpoint_are_not_drift_and_not_repaired(ReconcileDepth depth)
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 30; i++)
        {
            await p.UpsertAsync(i, i % 5, i * 100, "new");
        }

        await p.Processor().DrainAsync(CancellationToken.None);
        await p.UpsertAsync(4, 4, 999, "paid");   // stale in the target until the feed runs
        await p.UpsertAsync(31, 1, 100, "new");   // missing in the target until the feed runs
        var feed = DualWriteProcessor.FeedNameFor(p.Spec.Feature);
        var options = new ReconcileOptions { Depth = depth, Mode = RepairMode.Report, SegmentSize = 8, PipelineCheckpoint = ct => p.Target.GetAsync(feed, ct) };

        var inFlight = await p.Reconciler().RunAsync(options, null, CancellationToken.None);
        var withoutCheckpoint = await p.Reconciler().RunAsync(options with { PipelineCheckpoint = null }, null, CancellationToken.None);

        Assert.Equal(0, inFlight.Counts.Drifted);
        Assert.Equal((1L, 1L), (withoutCheckpoint.Counts.Stale, withoutCheckpoint.Counts.Missing));
        await p.Processor().DrainAsync(CancellationToken.None);
        await p.AssertTargetMatchesSourceAsync("the pipeline applies what was in flight");
    }

    [Fact]
    public async Task A_change_at_or_below_the_checkpoint_missing_from_the_target_is_still_drift_and_repaired()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 20; i++)
        {
            await p.UpsertAsync(i, i % 5, i * 100, "new");
        }

        await p.Processor().DrainAsync(CancellationToken.None);
        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE source_key = '[7]'"); // lost after the pipeline applied it
        var feed = DualWriteProcessor.FeedNameFor(p.Spec.Feature);

        var run = await p.Reconciler().RunAsync(new ReconcileOptions { PipelineCheckpoint = ct => p.Target.GetAsync(feed, ct) }, null, CancellationToken.None);

        Assert.Equal((1L, 1L), (run.Counts.Missing, run.Counts.Repaired));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Theory]
    [InlineData(ReconcileDepth.Quick)]
    [InlineData(ReconcileDepth.Deep)]
    public async Task A_change_the_pipeline_applies_while_reconciliation_runs_is_not_drift(ReconcileDepth depth)
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 30; i++)
        {
            await p.UpsertAsync(i, i % 5, i * 100, "new");
        }

        await p.Processor().DrainAsync(CancellationToken.None);
        await p.UpsertAsync(4, 4, 999, "paid");
        await p.UpsertAsync(31, 1, 100, "new");
        var feed = DualWriteProcessor.FeedNameFor(p.Spec.Feature);
        var processor = p.Processor();

        // The pipeline catches up between the segment's target read and the checkpoint read (the race that
        // counted lag as drift): the change is in the target now, and nothing is drift.
        var run = await p.Reconciler().RunAsync(
            new ReconcileOptions
            {
                Depth = depth,
                Mode = RepairMode.Report,
                SegmentSize = 8,
                PipelineCheckpoint = async ct =>
                {
                    await processor.DrainAsync(ct);
                    return await p.Target.GetAsync(feed, ct);
                },
            },
            null,
            CancellationToken.None);

        Assert.Equal(0, run.Counts.Drifted);
    }
}
