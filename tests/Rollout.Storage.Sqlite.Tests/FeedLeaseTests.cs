using Rollout.Core.DataPath;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The feed's lease during a batch, on the real SQLite stores with a fake clock: a long batch keeps it (renewed in the
/// background), and a batch whose lease was taken by another instance stops and saves no checkpoint.
/// </summary>
public sealed class FeedLeaseTests
{
    private const string Feed = "orders-v2/dualwrite";

    [Fact]
    public async Task A_batch_longer_than_the_lease_keeps_it_so_no_other_instance_can_take_the_feed_meanwhile()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 5; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var target = new RefusingTarget(p.Target);
        bool? otherTookIt = null;
        target.BeforeApply = async (_, _) =>
        {
            // The apply "takes" 40 s (throttled): longer than the 30 s lease.
            for (var step = 0; step < 4; step++)
            {
                p.Time.Advance(TimeSpan.FromSeconds(10));
                await WaitUntilAsync(async () => (await p.LeaseAsync(Feed))?.ExpiresAtMs == p.Time.GetUtcNow().AddSeconds(30).ToUnixTimeMilliseconds(), "the lease to be renewed");
            }

            otherTookIt = await p.Target.TryAcquireAsync(Feed, "b", TimeSpan.FromSeconds(30), CancellationToken.None);
        };

        var outcome = await p.Processor("a", target: target).RunOnceAsync(CancellationToken.None);

        Assert.False(otherTookIt);
        Assert.Equal((true, 5, 5L), (outcome.LeaseHeld, outcome.Applied, outcome.Checkpoint));
        Assert.Equal("a", (await p.LeaseAsync(Feed))!.Value.Owner);
    }

    [Fact]
    public async Task A_lease_taken_by_another_instance_before_the_checkpoint_stops_the_batch_without_saving_it()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 5; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        // Instance a was frozen past its lease and b took the feed; a wakes up (its renewal is due) mid-apply.
        var target = new RefusingTarget(p.Target)
        {
            BeforeApply = async (_, _) =>
            {
                await p.ExecuteTargetAsync("UPDATE leases SET owner = 'b', expires_at_ms = expires_at_ms + 60000 WHERE name = @name", ("@name", Feed));
                p.Time.Advance(TimeSpan.FromSeconds(11));
            },
        };

        var outcome = await p.Processor("a", target: target).RunOnceAsync(CancellationToken.None);

        Assert.False(outcome.LeaseHeld);
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));
        Assert.Empty(await p.Target.ListAsync("orders-v2", includeResolved: true, CancellationToken.None));
        Assert.Equal("b", (await p.LeaseAsync(Feed))!.Value.Owner);
        // b replays the batch from the checkpoint a did not save (a's writes, if they landed, are harmless: version-guarded).
        var replay = await p.Processor("b").DrainAsync(CancellationToken.None);
        Assert.Equal((5, 5, 5L), (replay.Read, replay.Applied + replay.Stale, replay.Checkpoint));
        await p.AssertTargetMatchesSourceAsync();
    }

    [Fact]
    public async Task A_renewal_that_finds_another_owner_cancels_the_batch_while_it_runs()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 5; i++)
        {
            await p.UpsertAsync(i, i, 100 * i, "new");
        }

        var cancelled = false;
        var target = new RefusingTarget(p.Target)
        {
            BeforeApply = async (_, token) =>
            {
                await p.ExecuteTargetAsync("UPDATE leases SET owner = 'b' WHERE name = @name", ("@name", Feed));
                p.Time.Advance(TimeSpan.FromSeconds(10)); // the next renewal is due
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, token).WaitAsync(TimeSpan.FromSeconds(30)); // a long apply
                }
                catch (OperationCanceledException)
                {
                    cancelled = true;
                    throw;
                }
            },
        };

        var outcome = await p.Processor("a", target: target).RunOnceAsync(CancellationToken.None);

        Assert.True(cancelled);
        Assert.False(outcome.LeaseHeld);
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));
        Assert.Null(await p.Target.GetFailuresAsync(Feed, CancellationToken.None)); // a lost lease is not a failed attempt
        Assert.Equal("b", (await p.LeaseAsync(Feed))!.Value.Owner);
    }

    [Fact]
    public async Task A_feed_read_cancelled_by_a_lost_lease_that_fails_with_its_own_exception_is_a_lost_lease_not_an_error()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "new");
        // The read is slow; meanwhile b takes the feed, a's renewal finds it, and the read's command fails the way SqlClient
        // reports a command cancelled under it: a SqlException, not an OperationCanceledException.
        var feed = new CancelledFeed(p.Source, async token =>
        {
            await p.ExecuteTargetAsync("UPDATE leases SET owner = 'b' WHERE name = @name", ("@name", Feed));
            p.Time.Advance(TimeSpan.FromSeconds(10));
            await Task.Delay(Timeout.InfiniteTimeSpan, token).WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
            throw new InvalidOperationException("A severe error occurred on the current command. Operation cancelled by user.");
        });

        var outcome = await p.Processor("a", feed: feed).RunOnceAsync(CancellationToken.None);

        Assert.False(outcome.LeaseHeld);
        Assert.Null(await p.Target.GetAsync(Feed, CancellationToken.None));
        Assert.Null(await p.Target.GetFailuresAsync(Feed, CancellationToken.None));
        Assert.Equal("b", (await p.LeaseAsync(Feed))!.Value.Owner);
    }

    /// <summary>The real feed, whose change read runs <c>read</c> instead.</summary>
    private sealed class CancelledFeed(IChangeFeed inner, Func<CancellationToken, Task> read) : IChangeFeed
    {
        public Task<long> GetCurrentVersionAsync(CancellationToken cancellationToken) => inner.GetCurrentVersionAsync(cancellationToken);

        public async Task<IReadOnlyList<SourceChange>> ReadChangesAsync(long afterVersion, int maxChanges, CancellationToken cancellationToken)
        {
            await read(cancellationToken);
            return await inner.ReadChangesAsync(afterVersion, maxChanges, cancellationToken);
        }
    }

    [Fact]
    public async Task A_lease_answered_slowly_counts_from_when_it_was_asked_for_so_the_checkpoint_confirms_it_again()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "new");

        // The first acquisition's answer takes 12 s to come back (more than a third of the 30 s lease): the lease holds
        // from when it was asked for, so by the checkpoint less than two thirds of it may be left and it must be
        // confirmed with another round trip rather than taken as fresh.
        var leases = new SlowLeases(p.Target, p.Time, TimeSpan.FromSeconds(12));
        var outcome = await p.Processor("a", leases: leases).RunOnceAsync(CancellationToken.None);

        Assert.Equal((true, 1, 1L), (outcome.LeaseHeld, outcome.Applied, outcome.Checkpoint));
        Assert.Equal(2, leases.Calls);
    }

    [Fact]
    public async Task A_lease_answered_at_once_is_not_confirmed_again_before_a_quick_checkpoint()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "new");

        var leases = new SlowLeases(p.Target, p.Time, TimeSpan.Zero);
        var outcome = await p.Processor("a", leases: leases).RunOnceAsync(CancellationToken.None);

        Assert.Equal((true, 1, 1L), (outcome.LeaseHeld, outcome.Applied, outcome.Checkpoint));
        Assert.Equal(1, leases.Calls);
    }

    /// <summary>The real lease store, whose answer to the first call comes back <c>delay</c> later on the fake clock.</summary>
    private sealed class SlowLeases(ILeaseStore inner, Microsoft.Extensions.Time.Testing.FakeTimeProvider time, TimeSpan delay) : ILeaseStore
    {
        private int _calls;

        public int Calls => _calls;

        public async Task<bool> TryAcquireAsync(string name, string owner, TimeSpan duration, CancellationToken cancellationToken)
        {
            var held = await inner.TryAcquireAsync(name, owner, duration, cancellationToken);
            if (Interlocked.Increment(ref _calls) == 1)
            {
                time.Advance(delay);
            }

            return held;
        }

        public Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken) => inner.ReleaseAsync(name, owner, cancellationToken);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(10);
        }
    }
}
