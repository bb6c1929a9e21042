using System.Text.Json;
using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The retry limit of the dual-write processor on the real SQLite stores, with a decorator of the target that refuses
/// writes: a poison change is dead-lettered after the limit and the feed moves on; a transient failure or an outage
/// of the target never is, however long it lasts.
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

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task A_target_that_stays_down_past_the_limit_dead_letters_nothing_and_the_feed_resumes_when_it_is_back(int pending)
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= pending; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { Down = true };

        // Twice the limit, a new process each time: an outage is waited for, whatever the count (one pending change too).
        for (var run = 1; run <= 4; run++)
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => p.Processor($"run{run}", target: target, maxAttempts: 2).DrainAsync(CancellationToken.None));
        }

        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));
        Assert.Null(await p.Target.GetFailuresAsync(Feed, CancellationToken.None)); // an outage does not count towards the limit

        target.Down = false;
        var back = await p.Processor("run5", target: target, maxAttempts: 2).DrainAsync(CancellationToken.None);

        Assert.Equal((pending, pending, 0), (back.Read, back.Applied, back.DeadLettered));
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_target_failure_during_the_change_by_change_pass_dead_letters_nothing_of_the_batch()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 4; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { Poison = { "[2]" } };
        Task<BatchOutcome> Run() => p.Processor(target: target, maxAttempts: 2).DrainAsync(CancellationToken.None);
        await Assert.ThrowsAsync<InvalidOperationException>(Run);

        // The second refusal reaches the limit: the batch is applied change by change, and the target goes down at [3].
        target.BeforeApply = (writes, _) => writes is [{ Key.Text: "[3]" }] ? throw new TargetUnavailableException("throttled (429)") : Task.CompletedTask;
        await Assert.ThrowsAsync<TargetUnavailableException>(Run);

        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None)); // not even the poison [2]
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));
        Assert.Equal(2, (await p.Target.GetFailuresAsync(Feed, CancellationToken.None))!.Attempts); // the refusals, not the outage
        target.BeforeApply = null;
        var next = await Run();
        Assert.Equal((4, 2, 1, 4L), (next.Read, next.Applied, next.DeadLettered, next.Checkpoint)); // [1] was applied before the outage
        Assert.Equal("[2]", Assert.Single(await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None)).Key.Text);
    }

    [Fact]
    public async Task When_every_change_is_refused_on_its_own_nothing_is_dead_lettered_and_the_next_run_takes_the_oldest_change_alone()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 3; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target) { Poison = { "[1]", "[2]", "[3]" } };
        var processor = p.Processor(target: target, maxAttempts: 2);

        await Assert.ThrowsAsync<InvalidOperationException>(() => processor.RunOnceAsync(CancellationToken.None));
        var refused = await Assert.ThrowsAsync<ChangesRefusedException>(() => processor.RunOnceAsync(CancellationToken.None));
        Assert.Contains("Every one of the 3 changes after checkpoint 0 was refused", refused.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(refused.InnerException);
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));

        // Refused again on its own: the oldest change alone is dead-lettered, so even a batch of poison changes drains, one per run.
        var narrowed = await processor.RunOnceAsync(CancellationToken.None);

        Assert.Equal((1, 0, 1, 1L), (narrowed.Read, narrowed.Applied, narrowed.DeadLettered, narrowed.Checkpoint));
        Assert.Equal("[1]", Assert.Single(await p.Target.ListAsync("orders-v2", includeResolved: false, CancellationToken.None)).Key.Text);
        target.Poison.Clear();
        await processor.DrainAsync(CancellationToken.None);
        Assert.Equal((1, 0), await processor.RetryDeadLettersAsync(p.Source, CancellationToken.None));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_failure_recorded_by_a_stale_instance_at_an_older_checkpoint_neither_resets_nor_overwrites_the_count()
    {
        await using var p = await Pipeline.CreateAsync();

        Assert.Equal(1, await p.Target.RecordFailureAsync(Feed, 10, "first", CancellationToken.None));
        Assert.Equal(2, await p.Target.RecordFailureAsync(Feed, 10, "second", CancellationToken.None));
        Assert.Equal(0, await p.Target.RecordFailureAsync(Feed, 7, "from an instance still at 7", CancellationToken.None));
        var failures = await p.Target.GetFailuresAsync(Feed, CancellationToken.None);
        Assert.Equal((10L, 2, "second"), (failures!.Position, failures.Attempts, failures.LastError));
        Assert.Equal(1, await p.Target.RecordFailureAsync(Feed, 12, "moved on", CancellationToken.None));
    }

    [Fact]
    public async Task The_polling_loop_outlives_failed_batches_and_applies_the_changes_once_the_target_is_back()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "new");
        var target = new RefusingTarget(p.Target) { TransientFailures = 3 };
        var failures = new List<Exception>();
        using var stop = new CancellationTokenSource();

        var running = p.Processor("a", target: target).RunAsync(TimeSpan.FromSeconds(1), stop.Token, e => { lock (failures) { failures.Add(e); } });
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await p.Target.GetAsync(Feed, CancellationToken.None) != 1)
        {
            Assert.False(running.IsCompleted, "the loop ended: " + running.Exception?.GetBaseException().Message);
            Assert.True(DateTime.UtcNow < deadline, "the change was never applied");
            p.Time.Advance(TimeSpan.FromSeconds(1)); // the loop's pause after a failed batch
            await Task.Delay(20);
        }

        await stop.CancelAsync();
        await running;
        Assert.Equal(3, failures.Count);
        Assert.All(failures, e => Assert.IsType<TimeoutException>(e));
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

/// <summary>The embedded target reports a database it cannot write (locked past its busy timeout) as unavailable.</summary>
public sealed class SqliteTargetAvailabilityTests
{
    [Fact]
    public async Task A_target_database_locked_past_the_busy_timeout_is_unavailable_not_a_refused_document()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
        var database = new SqliteDatabase(Path.Combine(folder, "target.db"), busyTimeout: TimeSpan.FromMilliseconds(200));
        var target = new SqliteTargetStore(database, "orders", TimeProvider.System);
        await target.InitializeAsync(CancellationToken.None);
        var document = new Rollout.Core.Translation.TranslatedDocument("1", "1", "{}"u8.ToArray(), default);

        await using (var holder = await database.OpenAsync())
        {
            await using var transaction = holder.BeginTransaction(deferred: false); // another writer holds the lock
            var error = await Assert.ThrowsAsync<TargetUnavailableException>(() => target.ApplyAsync([new TargetWrite(SourceKey.From([1L]), 1, document)], CancellationToken.None));
            Assert.IsType<Microsoft.Data.Sqlite.SqliteException>(error.InnerException);
        }

        Assert.Equal(1, (await target.ApplyAsync([new TargetWrite(SourceKey.From([1L]), 1, document)], CancellationToken.None)).Applied);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
    }
}
