using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class SyntheticWorkloadTests : IAsyncLifetime
{
    private static readonly TimeSpan Latency = TimeSpan.FromMinutes(10);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
    private readonly LatencyTimers _time = new(Latency);
    private EmbeddedRollout _rollout = null!;

    public async Task InitializeAsync()
    {
        _rollout = EmbeddedRollout.Open(_folder, RolloutSpecLoader.Load(Pipeline.SpecJson).Spec!, _time);
        await SourceSeeder.CreateTableAsync(_rollout);
        await _rollout.InitializeAsync();
        await SourceSeeder.SeedAsync(_rollout, 50, seed: 1);
    }

    public async Task DisposeAsync()
    {
        await _rollout.DisposeAsync();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    [Fact]
    public async Task Injected_latency_is_spent_before_the_new_path_takes_the_write_lock_so_a_rollback_is_not_held_up()
    {
        await _rollout.Rollouts.SetStateAsync("orders-v2", "full", ExposureLevel.Full, ReadMode.Live, "test", CancellationToken.None);
        using var workload = new SyntheticWorkload(_rollout, GateOptions.From(_rollout.Spec) with { Timeout = TimeSpan.FromHours(1) }, requestsPerSecond: 200, writeShare: 1);
        workload.Faults.AddedLatency = Latency;
        using var stop = new CancellationTokenSource();
        var running = workload.RunAsync(stop.Token);

        // A new-path write is now waiting out its latency (on this clock it never ends).
        await _time.LatencyStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // The rollback's own write, with a busy timeout of 1 s instead of 30: it must not wait for the slow writes.
        var rollback = new SqliteRolloutStore(new SqliteDatabase(_rollout.SourceDatabase.Path, busyTimeout: TimeSpan.FromSeconds(1)), TimeProvider.System);
        var state = await rollback.SetStateAsync("orders-v2", "full", ExposureLevel.None, ReadMode.Legacy, "rollback: test", CancellationToken.None);

        Assert.Equal(0, state.Exposure.Buckets);
        await stop.CancelAsync();
        await running;
    }

    /// <summary>The system clock, except that a timer of the injected latency never fires, and says when it is set.</summary>
    private sealed class LatencyTimers(TimeSpan latency) : TimeProvider
    {
        public TaskCompletionSource LatencyStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime != latency)
            {
                return base.CreateTimer(callback, state, dueTime, period);
            }

            LatencyStarted.TrySetResult();
            return base.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }
}
