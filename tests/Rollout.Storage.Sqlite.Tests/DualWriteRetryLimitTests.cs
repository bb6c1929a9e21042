using System.Text.Json;
using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The retry limit of the dual-write processor on the real SQLite stores, with a decorator of the target that refuses
/// writes: a poison change is dead-lettered after the limit and the feed moves on; a transient failure never is.
/// </summary>
public sealed class DualWriteRetryLimitTests
{
    private const string Feed = "orders-v2/dualwrite";

    [Fact]
    public async Task A_change_the_target_keeps_refusing_is_dead_lettered_after_the_limit_and_every_other_change_is_applied()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 10; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        await p.UpsertAsync(11, 11, "eleven", "untranslatable");
        var target = new RefusingTarget(p.Target) { Poison = { "[4]" } };

        // Each attempt runs in a new processor (a new process): the count lives in target.db.
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => p.Processor($"run{attempt}", target: target, maxAttempts: 3).DrainAsync(CancellationToken.None));
            Assert.Contains("Conflict (409)", error.Message, StringComparison.Ordinal);
            Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));
            var failures = await p.Target.GetFailuresAsync(Feed, CancellationToken.None);
            Assert.Equal((0L, attempt), (failures!.Position, failures.Attempts));
            Assert.Contains("Conflict (409)", failures.LastError, StringComparison.Ordinal);
        }

        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        var third = await p.Processor("run3", target: target, maxAttempts: 3).DrainAsync(CancellationToken.None);

        Assert.Equal((11, 9, 2, 11L), (third.Read, third.Applied, third.DeadLettered, third.Checkpoint));
        Assert.Equal(11, await p.Target.GetAsync(Feed, CancellationToken.None));
        Assert.Null(await p.Target.GetFailuresAsync(Feed, CancellationToken.None)); // cleared as the checkpoint moved past it
        var letters = await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None);
        var refused = Assert.Single(letters, l => l.IsApplyFailure);
        Assert.Equal(("[4]", 4L), (refused.Key.Text, refused.Version));
        var reason = Assert.Single(refused.Errors);
        Assert.Equal(("$", TranslationErrorKind.ApplyFailed), (reason.Field, reason.Kind));
        Assert.Equal("InvalidOperationException: Conflict (409): a document with id '[4]' already exists in another partition", reason.Message);
        var untranslatable = Assert.Single(letters, l => !l.IsApplyFailure);
        Assert.Equal(("[11]", TranslationErrorKind.ConversionFailed), (untranslatable.Key.Text, Assert.Single(untranslatable.Errors).Kind));
        for (var i = 1; i <= 10; i++)
        {
            var doc = await p.Target.GetAsync(new SourceKey($"[{i}]"), CancellationToken.None);
            Assert.True(i == 4 ? doc is null : doc?.SourceVersion == i, $"key {i}: {doc?.SourceVersion}");
        }

        // Nothing is lost: once the target takes it, the dead letter's retry brings the key over.
        target.Poison.Clear();
        var (resolved, failing) = await p.Processor(target: target).RetryDeadLettersAsync(p.Source, CancellationToken.None);
        Assert.Equal((1, 1), (resolved, failing));
        await p.UpsertAsync(11, 11, 1100, "fixed");
        await p.Processor(target: target).DrainAsync(CancellationToken.None);
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_transient_failure_is_retried_as_a_batch_and_never_dead_lettered()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 10; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { TransientFailures = 2 };

        await Assert.ThrowsAsync<TimeoutException>(() => p.Processor("run1", target: target).DrainAsync(CancellationToken.None));
        await Assert.ThrowsAsync<TimeoutException>(() => p.Processor("run2", target: target).DrainAsync(CancellationToken.None));
        var third = await p.Processor("run3", target: target).DrainAsync(CancellationToken.None);

        Assert.Equal((10, 10, 0, 10L), (third.Read, third.Applied, third.DeadLettered, third.Checkpoint));
        Assert.Equal(3, target.Calls); // one batch each time: never split
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        Assert.Null(await p.Target.GetFailuresAsync(Feed, CancellationToken.None));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_transient_failure_that_reaches_the_limit_is_applied_change_by_change_and_not_dead_lettered()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 5; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { TransientFailures = 2 };

        await Assert.ThrowsAsync<TimeoutException>(() => p.Processor(target: target, maxAttempts: 2).DrainAsync(CancellationToken.None));
        var second = await p.Processor(target: target, maxAttempts: 2).DrainAsync(CancellationToken.None);

        Assert.Equal((5, 5, 0, 5L), (second.Read, second.Applied, second.DeadLettered, second.Checkpoint));
        Assert.Equal(2 + 5, target.Calls); // two failed batches, then each change on its own
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task When_every_change_fails_on_its_own_nothing_is_dead_lettered_and_the_next_run_takes_the_oldest_change_alone()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 3; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { Down = true };
        var processor = p.Processor(target: target, maxAttempts: 2);

        await Assert.ThrowsAsync<HttpRequestException>(() => processor.RunOnceAsync(CancellationToken.None));
        var down = await Assert.ThrowsAsync<TargetUnavailableException>(() => processor.RunOnceAsync(CancellationToken.None));
        Assert.Contains("Every one of the 3 changes after checkpoint 0 failed", down.Message, StringComparison.Ordinal);
        Assert.IsType<HttpRequestException>(down.InnerException);
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));

        // Still down: the oldest change alone is dead-lettered, so even a batch of poison changes drains, one per run.
        var narrowed = await processor.RunOnceAsync(CancellationToken.None);

        Assert.Equal((1, 0, 1, 1L), (narrowed.Read, narrowed.Applied, narrowed.DeadLettered, narrowed.Checkpoint));
        Assert.Equal("[1]", Assert.Single(await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None)).Key.Text);
        target.Down = false;
        await processor.DrainAsync(CancellationToken.None);
        Assert.Equal((1, 0), await processor.RetryDeadLettersAsync(p.Source, CancellationToken.None));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_dead_letter_retry_racing_the_feed_never_overwrites_the_newer_version_the_feed_applied()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 3; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { Poison = { "[2]" } };
        var first = await p.Processor(target: target, maxAttempts: 1).DrainAsync(CancellationToken.None);
        Assert.Equal((2, 1, 3L), (first.Applied, first.DeadLettered, first.Checkpoint));

        // The retry reads key 2 at version 2; before its write lands, the row changes (version 4) and the feed applies that.
        target.Poison.Clear();
        target.BeforeApply = async (writes, _) =>
        {
            target.BeforeApply = null;
            Assert.Equal(2, Assert.Single(writes).SourceVersion);
            await p.UpsertAsync(2, 2, 999, "newer");
            await p.Processor("feed").DrainAsync(CancellationToken.None);
        };
        var (resolved, failing) = await p.Processor(target: target).RetryDeadLettersAsync(p.Source, CancellationToken.None);

        Assert.Equal((1, 0), (resolved, failing));
        var doc = await p.Target.GetAsync(new SourceKey("[2]"), CancellationToken.None);
        Assert.Equal(4, doc!.SourceVersion);
        Assert.Equal("newer", JsonDocument.Parse(doc.Json!).RootElement.GetProperty("status").GetString());
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None));
        await p.AssertTargetMatchesSourceAsync();
    }
}
