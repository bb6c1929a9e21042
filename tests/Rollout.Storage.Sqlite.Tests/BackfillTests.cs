using Rollout.Core.DataPath;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class BackfillTests
{
    [Fact]
    public async Task Backfill_copies_rows_that_predate_tracking_and_reports_progress()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 25);
        var reports = new List<BackfillReport>();

        var progress = await p.Backfill().RunAsync(10, reports.Add, CancellationToken.None);

        Assert.True(progress.Completed);
        Assert.Equal(25, progress.Copied);
        Assert.Equal(0, progress.StartVersion);
        Assert.Equal([10L, 20L, 25L, 25L], reports.Select(r => r.Copied));
        Assert.All(reports, r => Assert.Equal(25, r.Total));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task Backfill_records_the_feed_version_first_and_the_feed_applies_what_changed_since()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 10);
        await p.UpsertAsync(3, 3, 333, "before backfill"); // v1
        var crashed = false;
        var backfill = p.Backfill(point =>
        {
            if (point == FaultPoint.BackfillAfterCopy && !crashed)
            {
                crashed = true;
                throw new IOException("simulated crash after the first batch");
            }
        });

        await Assert.ThrowsAsync<IOException>(() => backfill.RunAsync(4, null, CancellationToken.None));
        await p.UpsertAsync(2, 2, 222, "changed during backfill"); // v2: already copied in its old form
        await p.DeleteAsync(9);                                   // v3: not copied yet
        await p.UpsertAsync(11, 11, 1100, "new row");             // v4
        var resumed = await backfill.RunAsync(4, null, CancellationToken.None);
        await p.Processor().DrainAsync(CancellationToken.None);

        Assert.Equal(1, resumed.StartVersion);
        Assert.True(resumed.Completed);
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_completed_backfill_does_nothing_when_run_again()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 3);
        await p.Backfill().RunAsync(10, null, CancellationToken.None);

        var again = await p.Backfill().RunAsync(10, null, CancellationToken.None);

        Assert.Equal((true, 3L), (again.Completed, again.Copied));
    }

    [Fact]
    public async Task A_backfilled_row_never_overwrites_a_newer_version_the_feed_applied()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 5);
        await p.UpsertAsync(4, 4, 444, "newer");
        await p.Processor().DrainAsync(CancellationToken.None);

        await p.Backfill().RunAsync(2, null, CancellationToken.None);

        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task Untranslatable_rows_found_by_the_backfill_go_to_dead_letters()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 3, initialize: false);
        await p.UpsertAsync(2, 2, "n/a", "bad");
        await p.Source.InitializeAsync();
        await p.Target.InitializeAsync();

        var progress = await p.Backfill().RunAsync(10, null, CancellationToken.None);

        Assert.Equal(3, progress.Copied);
        var letter = Assert.Single(await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None));
        Assert.Equal("[2]", letter.Key.Text);
    }
}
