using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class DualWriteProcessorTests
{
    [Fact]
    public async Task Changes_reach_the_target_as_versioned_documents_and_tombstones()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 7, 1990, "new");
        await p.UpsertAsync(2, 8, 500, "new");
        await p.DeleteAsync(2);

        var outcome = await p.Processor().DrainAsync(CancellationToken.None);

        Assert.Equal((2, 2, 3L), (outcome.Read, outcome.Applied, outcome.Checkpoint));
        var doc = await p.Target.GetAsync(new SourceKey("[1]"), CancellationToken.None);
        Assert.Equal("""{"customerId":"7","id":"1","status":"new","total":19.9}""", doc!.Json);
        Assert.Equal(1, doc.SourceVersion);
        var tombstone = await p.Target.GetAsync(new SourceKey("[2]"), CancellationToken.None);
        Assert.True(tombstone!.IsTombstone);
        Assert.Equal(3, tombstone.SourceVersion);
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_drain_with_a_budget_stops_between_batches_once_it_is_spent_and_gives_the_lease_up()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var id = 1; id <= 100; id++)
        {
            await p.UpsertAsync(id, id, 100 * id, "new");
        }

        var processor = p.Processor("timer-1", batchSize: 10);
        var batches = 0;
        var first = await processor.DrainAsync(TimeSpan.FromSeconds(10), CancellationToken.None, _ =>
        {
            batches++;
            p.Time.Advance(TimeSpan.FromSeconds(4)); // each batch "takes" 4 s: the third one ends past the budget
        });

        Assert.Equal((3, 30, 30L), (batches, first.Read, first.Checkpoint));
        Assert.True(await p.Target.TryAcquireAsync(processor.FeedName, "timer-2", TimeSpan.FromMinutes(1), CancellationToken.None)); // released
        await p.Target.ReleaseAsync(processor.FeedName, "timer-2", CancellationToken.None);

        // The next invocation carries on from the checkpoint, and keeps going while changes arrive within its budget.
        var arrived = false;
        var second = await processor.DrainAsync(TimeSpan.FromMinutes(5), CancellationToken.None, _ =>
        {
            if (!arrived)
            {
                arrived = true;
                p.UpsertAsync(101, 1, 1, "late").GetAwaiter().GetResult();
            }
        });

        Assert.Equal((71, 101L), (second.Read, second.Checkpoint));
        await p.AssertTargetMatchesSourceAsync();
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => processor.DrainAsync(TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task An_older_version_never_overwrites_a_newer_one_and_replays_change_nothing()
    {
        await using var p = await Pipeline.CreateAsync();
        var newer = p.Translator.Translate(SourceRow.From(new Dictionary<string, object?> { ["OrderId"] = 1L, ["CustomerId"] = 1L, ["TotalCents"] = 2L, ["Status"] = "b" })).Document!;
        var older = p.Translator.Translate(SourceRow.From(new Dictionary<string, object?> { ["OrderId"] = 1L, ["CustomerId"] = 1L, ["TotalCents"] = 1L, ["Status"] = "a" })).Document!;
        var key = new SourceKey("[1]");

        var first = await p.Target.ApplyAsync([new TargetWrite(key, 5, newer)], CancellationToken.None);
        var stale = await p.Target.ApplyAsync([new TargetWrite(key, 4, older)], CancellationToken.None);
        var replay = await p.Target.ApplyAsync([new TargetWrite(key, 5, older)], CancellationToken.None);
        var staleTombstone = await p.Target.ApplyAsync([new TargetWrite(key, 3, null)], CancellationToken.None);

        Assert.Equal((1, 0), (first.Applied, first.Stale));
        Assert.Equal((0, 1), (stale.Applied, stale.Stale));
        Assert.Equal((0, 1), (replay.Applied, replay.Stale));
        Assert.Equal((0, 1), (staleTombstone.Applied, staleTombstone.Stale));
        Assert.Equal(newer.Hash, (await p.Target.GetAsync(key, CancellationToken.None))!.Hash);
    }

    [Fact]
    public async Task A_tombstone_stops_a_late_older_upsert_from_resurrecting_the_row()
    {
        await using var p = await Pipeline.CreateAsync();
        var doc = p.Translator.Translate(SourceRow.From(new Dictionary<string, object?> { ["OrderId"] = 1L, ["CustomerId"] = 1L, ["TotalCents"] = 1L, ["Status"] = "a" })).Document!;
        var key = new SourceKey("[1]");

        await p.Target.ApplyAsync([new TargetWrite(key, 9, null)], CancellationToken.None);
        await p.Target.ApplyAsync([new TargetWrite(key, 8, doc)], CancellationToken.None);

        Assert.True((await p.Target.GetAsync(key, CancellationToken.None))!.IsTombstone);
    }

    [Fact]
    public async Task Untranslatable_rows_land_in_dead_letters_with_their_reason_and_the_processor_goes_on()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "ok");
        await p.UpsertAsync(2, 2, "twelve", "bad total");
        await p.ExecuteSourceAsync("INSERT INTO Orders (OrderId, CustomerId, TotalCents, Status) VALUES (3, NULL, 5, 'no customer')");
        await p.UpsertAsync(4, 4, 400, "ok");

        var outcome = await p.Processor().DrainAsync(CancellationToken.None);
        var letters = await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None);

        Assert.Equal((4, 2, 2), (outcome.Read, outcome.Applied, outcome.DeadLettered));
        Assert.Equal(4, outcome.Checkpoint);
        Assert.Collection(letters,
            l =>
            {
                Assert.Equal(("[2]", 2L), (l.Key.Text, l.Version));
                var error = Assert.Single(l.Errors);
                Assert.Equal(("total", "TotalCents", TranslationErrorKind.ConversionFailed), (error.Field, error.Column, error.Kind));
                Assert.Contains("centsToDecimal", error.Message, StringComparison.Ordinal);
            },
            l => Assert.Equal(("[3]", TranslationErrorKind.NullInRequiredField, "customerId"), (l.Key.Text, Assert.Single(l.Errors).Kind, l.Errors[0].Field)));
    }

    [Fact]
    public async Task Replaying_a_batch_after_a_crash_does_not_duplicate_dead_letters()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, "bad", "x");
        var crashed = false;
        var processor = p.Processor(fault: point =>
        {
            if (point == FaultPoint.AfterApplyBeforeCheckpoint && !crashed)
            {
                crashed = true;
                throw new IOException("simulated crash before the checkpoint");
            }
        });

        await Assert.ThrowsAsync<IOException>(() => processor.RunOnceAsync(CancellationToken.None));
        var replay = await processor.DrainAsync(CancellationToken.None);

        Assert.Equal(1, replay.DeadLettered);
        var letter = Assert.Single(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        Assert.Equal(1, letter.Version);
    }

    [Fact]
    public async Task Retry_resolves_dead_letters_once_the_row_is_fixed_and_counts_failures_otherwise()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, "bad", "x");
        await p.UpsertAsync(2, 2, "bad", "y");
        var processor = p.Processor();
        await processor.DrainAsync(CancellationToken.None);
        // Fix row 1 without the feed seeing it yet (the processor is not run again).
        await p.UpsertAsync(1, 1, 100, "fixed");

        var (resolved, failing) = await processor.RetryDeadLettersAsync(p.Source, CancellationToken.None);

        Assert.Equal((1, 1), (resolved, failing));
        var open = Assert.Single(await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None));
        Assert.Equal(("[2]", 2), (open.Key.Text, open.Attempts));
        Assert.Equal("fixed", System.Text.Json.JsonDocument.Parse((await p.Target.GetAsync(new SourceKey("[1]"), CancellationToken.None))!.Json!).RootElement.GetProperty("status").GetString());
        await processor.DrainAsync(CancellationToken.None);
        await p.UpsertAsync(2, 2, 200, "fixed");
        await processor.DrainAsync(CancellationToken.None);
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_retry_does_not_close_a_newer_failure_recorded_meanwhile()
    {
        await using var p = await Pipeline.CreateAsync();
        var error = new TranslationError("total", "TotalCents", TranslationErrorKind.ConversionFailed, "x");
        await p.Target.AddAsync([new DeadLetter(0, "orders-v2", new SourceKey("[1]"), 1, [error], p.Time.GetUtcNow(), 1, null)], CancellationToken.None);
        var id = (await p.Target.ListAsync("orders-v2", false, CancellationToken.None))[0].Id;
        // The feed dead-letters version 3 of the same key while a retry applies version 2.
        await p.Target.AddAsync([new DeadLetter(0, "orders-v2", new SourceKey("[1]"), 3, [error], p.Time.GetUtcNow(), 1, null)], CancellationToken.None);

        await p.Target.RecordRetryAsync(id, resolved: true, appliedVersion: 2, [], CancellationToken.None);

        var open = Assert.Single(await p.Target.ListAsync("orders-v2", false, CancellationToken.None));
        Assert.Equal((id, 3L), (open.Id, open.Version));
    }

    [Fact]
    public async Task Open_dead_letters_are_counted_per_feature_without_the_resolved_ones()
    {
        await using var p = await Pipeline.CreateAsync();
        var error = new TranslationError("total", "TotalCents", TranslationErrorKind.ConversionFailed, "x");
        DeadLetter Letter(string feature, long key, long version) => new(0, feature, SourceKey.From([key]), version, [error], p.Time.GetUtcNow(), 1, null);
        await p.Target.AddAsync([Letter("orders-v2", 1, 1), Letter("orders-v2", 2, 2), Letter("orders-v2", 3, 3), Letter("other-feature", 1, 4)], CancellationToken.None);
        await p.Target.AddAsync([Letter("orders-v2", 1, 5)], CancellationToken.None); // a newer failure of an open key: still one record
        var second = (await p.Target.ListAsync("orders-v2", false, CancellationToken.None)).Single(l => l.Key.Text == "[2]");
        await p.Target.RecordRetryAsync(second.Id, resolved: true, appliedVersion: 2, [], CancellationToken.None);

        Assert.Equal(2, await p.Target.CountOpenAsync("orders-v2", CancellationToken.None));
        Assert.Equal(1, await p.Target.CountOpenAsync("other-feature", CancellationToken.None));
        Assert.Equal(0, await p.Target.CountOpenAsync("orders-v3", CancellationToken.None));
    }

    [Fact]
    public async Task The_open_dead_letters_gauge_reports_the_last_count_of_the_backlog_and_nothing_once_it_is_stale()
    {
        await using var p = await Pipeline.CreateAsync();
        using var scope = new Rollout.Tests.Shared.MetricsScope();
        using var metrics = new Core.RolloutMetrics(scope, p.Time);
        var processor = p.Processor(metrics: metrics);
        await p.UpsertAsync(1, 1, "bad", "x");
        await p.UpsertAsync(2, 2, "bad", "y");
        await p.UpsertAsync(3, 3, 300, "ok");

        Assert.Empty(scope.OpenDeadLetters()); // never counted: no value, rather than a 0 nobody measured
        await processor.DrainAsync(CancellationToken.None);
        Assert.Equal(2, await processor.RecordOpenDeadLettersAsync(CancellationToken.None));
        Assert.Equal([("orders-v2", 2L)], scope.OpenDeadLetters());
        Assert.Equal([("orders-v2", 2L)], scope.OpenDeadLetters()); // reported at every collection, not once

        await p.UpsertAsync(1, 1, 100, "fixed");
        await processor.RetryDeadLettersAsync(p.Source, CancellationToken.None);
        await processor.RecordOpenDeadLettersAsync(CancellationToken.None);
        Assert.Equal([("orders-v2", 1L)], scope.OpenDeadLetters());

        // Another instance may be counting by now: a count older than this is not reported.
        p.Time.Advance(Core.RolloutMetrics.OpenDeadLettersReportedFor);
        Assert.Equal([("orders-v2", 1L)], scope.OpenDeadLetters());
        p.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(scope.OpenDeadLetters());
    }

    [Fact]
    public async Task Two_processors_on_one_feed_only_one_applies_until_the_lease_expires()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 1, "x");
        var a = p.Processor("a", batchSize: 1);
        var b = p.Processor("b", batchSize: 1);

        var first = await a.RunOnceAsync(CancellationToken.None);
        await p.UpsertAsync(2, 2, 2, "y");
        var blocked = await b.RunOnceAsync(CancellationToken.None);
        p.Time.Advance(TimeSpan.FromSeconds(31));
        var takenOver = await b.RunOnceAsync(CancellationToken.None);
        var lost = await a.RunOnceAsync(CancellationToken.None);

        Assert.True(first.LeaseHeld);
        Assert.Equal(1, first.Read);
        Assert.False(blocked.LeaseHeld);
        Assert.Equal(0, blocked.Read);
        Assert.True(takenOver.LeaseHeld);
        Assert.Equal(1, takenOver.Read);
        Assert.False(lost.LeaseHeld);
    }

    [Fact]
    public async Task Two_processors_racing_concurrently_apply_each_change_once()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 300; i++)
        {
            await p.UpsertAsync(i, i, i, "x");
        }

        var a = p.Processor("a", batchSize: 7);
        var b = p.Processor("b", batchSize: 7);
        var results = await Task.WhenAll(a.DrainAsync(CancellationToken.None), b.DrainAsync(CancellationToken.None), a.DrainAsync(CancellationToken.None));

        Assert.Equal(300, results.Sum(r => r.Applied));
        Assert.Equal(0, results.Sum(r => r.Stale));
        Assert.True(results.Count(r => r.Read > 0) >= 1);
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_crash_mid_batch_leaves_no_part_of_the_batch_applied()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 10; i++)
        {
            await p.UpsertAsync(i, i, i, "x");
        }

        p.Target.BeforeWrite = i => { if (i == 5) throw new IOException("simulated crash mid-batch"); };
        await Assert.ThrowsAsync<IOException>(() => p.Processor().RunOnceAsync(CancellationToken.None));
        p.Target.BeforeWrite = null;

        var docs = new List<TargetDocument>();
        await foreach (var d in p.Target.ReadAllAsync())
        {
            docs.Add(d);
        }

        Assert.Empty(docs);
        Assert.Null(await p.Target.GetAsync("orders-v2/dualwrite", CancellationToken.None));
    }
}
