using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Rollout.Core.DataPath;
using Rollout.Core.Spec;
using Rollout.Orchestration;
using Rollout.Orchestration.Tests;

namespace Rollout.Functions.Tests;

/// <summary>
/// The timer functions called as classes over the real SQLite stores and a real <c>DurableTaskClient</c> (Durable
/// Task SDK, in-memory backend, in process): change feed under its lease, scheduled reconciliation of a live
/// rollout, and the health monitor's rollback.
/// </summary>
public sealed class RolloutTimersTests
{
    [Fact]
    public async Task The_change_feed_timer_drains_under_the_lease_and_returns_at_once_when_another_instance_holds_it()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        var timers = Timers(h);

        var first = await timers.DrainAsync(default);
        var again = await timers.DrainAsync(default);
        var feed = DualWriteProcessor.FeedNameFor(h.Feature);
        Assert.True(await h.Rollout.Target.TryAcquireAsync(feed, "another-instance", TimeSpan.FromMinutes(1), default));
        var blocked = await timers.DrainAsync(default);

        Assert.Equal((true, 40, 40), (first!.LeaseHeld, first.Read, first.Applied));
        Assert.Equal(0, again!.Read);
        Assert.False(blocked!.LeaseHeld);
        var documents = 0;
        await foreach (var _ in h.Rollout.Target.ReadAllAsync())
        {
            documents++;
        }

        Assert.Equal(40, documents);
    }

    [Fact]
    public async Task The_change_feed_timer_publishes_the_features_open_dead_letters_as_a_gauge_after_each_run()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        var timers = Timers(h);
        var meters = h.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var error = new Rollout.Core.Translation.TranslationError("total", "TotalCents", Rollout.Core.Translation.TranslationErrorKind.ConversionFailed, "x");
        DeadLetter Letter(long key) => new(0, h.Feature, SourceKey.From([key]), 1, [error], DateTimeOffset.UnixEpoch, 1, null);

        await timers.DrainAsync(default);
        var none = Rollout.Tests.Shared.MetricsScope.OpenDeadLetters(meters);
        await h.Rollout.Target.AddAsync([Letter(1), Letter(2)], default);
        var before = Rollout.Tests.Shared.MetricsScope.OpenDeadLetters(meters);
        await timers.DrainAsync(default);
        var after = Rollout.Tests.Shared.MetricsScope.OpenDeadLetters(meters);

        Assert.Equal([(h.Feature, 0L)], none);
        Assert.Equal([(h.Feature, 0L)], before); // the last count, taken by the timer
        Assert.Equal([(h.Feature, 2L)], after);
    }

    [Fact]
    public async Task A_failed_drain_still_counts_the_open_dead_letters_and_fails_with_its_own_error()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        var timers = Timers(h);
        var meters = h.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var error = new Rollout.Core.Translation.TranslationError("total", "TotalCents", Rollout.Core.Translation.TranslationErrorKind.ConversionFailed, "x");
        await h.Rollout.Target.AddAsync([new DeadLetter(0, h.Feature, SourceKey.From([7L]), 1, [error], DateTimeOffset.UnixEpoch, 1, null)], default);
        // The feed cannot be read: its change table is gone.
        await using (var connection = await h.Rollout.SourceDatabase.OpenAsync())
        await using (var drop = connection.CreateCommand())
        {
            drop.CommandText = "DROP TABLE " + Rollout.Core.Spec.Identifiers.QuoteSqlite(h.Rollout.Source.TableName + "__ct");
            await drop.ExecuteNonQueryAsync();
        }

        await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => timers.DrainAsync(default));

        Assert.Equal([(h.Feature, 1L)], Rollout.Tests.Shared.MetricsScope.OpenDeadLetters(meters));
    }

    [Fact]
    public async Task The_scheduled_reconciliation_runs_only_while_a_rollout_is_live_and_repairs_what_is_missing()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        var timers = Timers(h);

        var before = await timers.ReconcileAsync(h.Client, default);
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");
        var repaired = await timers.ReconcileAsync(h.Client, default);
        var clean = await timers.ReconcileAsync(h.Client, default);

        Assert.Null(before);
        Assert.Equal((40L, 40L), (repaired!.Compared, repaired.Repaired));
        Assert.Equal(0, clean!.Drifted);
        Assert.Equal(2, (await h.Rollout.Audit.ListRunsAsync(h.Feature, 10, default)).Count);
    }

    [Fact]
    public async Task A_reconciliation_running_elsewhere_is_not_joined_but_reported_as_skipped()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        var timers = Timers(h);
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");
        var lease = Rollout.Core.Reconciliation.ReconcilerTrigger.LeaseNameFor(h.Feature);

        Assert.True(await h.Rollout.Target.TryAcquireAsync(lease, "another-instance/1", TimeSpan.FromMinutes(1), default));
        var skipped = await timers.ReconcileAsync(h.Client, default);
        await h.Rollout.Target.ReleaseAsync(lease, "another-instance/1", default);
        var ran = await timers.ReconcileAsync(h.Client, default);

        Assert.Null(skipped!.RunId);
        Assert.Contains("another reconciliation of 'orders-v2' is running", skipped.Summary, StringComparison.Ordinal);
        Assert.NotNull(ran!.RunId);
        Assert.Single(await h.Rollout.Audit.ListRunsAsync(h.Feature, 10, default));
        Assert.True(await h.Rollout.Target.TryAcquireAsync(lease, "another-instance/1", TimeSpan.FromMinutes(1), default)); // released after the run
    }

    [Fact]
    public async Task The_health_monitor_rolls_a_breaking_rollout_back_and_leaves_a_healthy_one_alone()
    {
        // The orchestration's own evaluations are an hour apart here: only the monitor can see the breach.
        var spec = RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT240M" }], b => b.EvaluateEvery = "PT60M");
        await using var h = await RolloutHarness.StartAsync(spec);
        var timers = Timers(h, window: TimeSpan.FromSeconds(10));
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");
        await Task.Delay(TimeSpan.FromSeconds(1)); // some traffic in the window

        var healthy = await timers.MonitorHealthAsync(h.Client, default);
        h.Traffic.InjectErrors(0.5);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var breach = await timers.MonitorHealthAsync(h.Client, default);
        var end = await h.WaitForEndAsync();
        var after = await timers.MonitorHealthAsync(h.Client, default);

        Assert.Equal("healthy", healthy!.Action);
        Assert.Equal("rolled-back", breach!.Action);
        Assert.Equal("breach", breach.Verdict!.Kind);
        Assert.Contains("error rate", breach.Detail, StringComparison.Ordinal);
        Assert.Equal("rolledBack", end.Result!.Outcome);
        Assert.Contains(end.Result.Reasons, r => r.Contains(RolloutHealthMonitor.By, StringComparison.Ordinal));
        Assert.Equal("skipped", after!.Action);
    }

    [Fact]
    public async Task Timers_of_an_app_with_no_feature_wired_do_nothing_and_say_so()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        using var empty = new ServiceCollection().BuildServiceProvider();
        var timers = new RolloutTimers(empty, new RolloutTimerOptions(), NullLogger<RolloutTimers>.Instance);

        Assert.Null(await timers.DrainAsync(default));
        Assert.Null(await timers.ReconcileAsync(h.Client, default));
        Assert.Null(await timers.MonitorHealthAsync(h.Client, default));
    }

    private static RolloutTimers Timers(RolloutHarness h, TimeSpan? window = null) =>
        new(h.Services, new RolloutTimerOptions { ChangeFeedBudget = TimeSpan.FromMinutes(1), HealthWindow = window ?? TimeSpan.FromMinutes(5) }, NullLogger<RolloutTimers>.Instance);
}
