using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Rollout.Core.Health;
using Rollout.Core.Spec;
using Rollout.Orchestration.Hosting;
using Rollout.Storage.Sqlite;

namespace Rollout.Orchestration.Tests;

/// <summary>
/// The durable backend: the Durable Task sidecar over the Azure Storage backend (as Durable Functions uses in
/// Azure) against Azurite. A host stopped in the middle of a bake (nothing drained) is replaced by a new one, which
/// carries on; so is one stopped while an activity it took is still running. The same with a real process kill
/// (SIGKILL) is DurableRunTests in the CLI tests.
/// </summary>
public sealed class DurableBackendTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public Task A_host_stopped_in_the_middle_of_a_bake_is_resumed_by_a_new_host_from_where_it_was() =>
        StopFirstHostThenFinishOnASecondAsync(stopDuringActivity: false);

    [Fact]
    public Task A_host_stopped_while_an_activity_it_took_is_running_is_resumed_and_the_activity_run_again() =>
        StopFirstHostThenFinishOnASecondAsync(stopDuringActivity: true);

    private async Task StopFirstHostThenFinishOnASecondAsync(bool stopDuringActivity)
    {
        var spec = RolloutHarness.OrdersSpec(
            [
                new PhaseSpec { Name = "shadow", Exposure = 0, Reads = ReadMode.Shadow, Bake = "PT2M" },
                new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT20M" }, // 20 s: the new host takes over well inside it
                new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT2M" },
            ],
            b => b.EvaluateEvery = "PT60S");
        var hub = "t" + Guid.NewGuid().ToString("N")[..12];
        void Durable(RolloutOrchestrationOptions o)
        {
            o.Backend = OrchestrationBackend.AzureStorage;
            o.AzureStorageConnectionString = azurite.ConnectionString;
            o.TaskHub = hub;
            o.RecoveryTime = TimeSpan.FromSeconds(8);
        }

        // The first host's health evaluations can be made to hang: the activity is taken and never finishes.
        var stall = new HealthStall();
        var first = await RolloutHarness.StartAsync(
            spec,
            orchestration: Durable,
            services: s => s.AddSingleton<IHealthWindowSource>(sp => new StallingHealthSource(sp.GetRequiredService<EmbeddedRollout>().Telemetry, stall)));
        string folder = first.Folder;
        RolloutStatusView before;
        try
        {
            await first.StartRolloutAsync();
            before = await first.WaitForStatusAsync(s => s.Phase == "canary" && s.Status == "baking", "canary baking", TimeSpan.FromSeconds(60));
            if (stopDuringActivity)
            {
                stall.Armed = true;
                using var reached = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await stall.Reached.Task.WaitAsync(reached.Token);
            }
        }
        finally
        {
            await first.CrashAsync();
        }

        await using var second = await RolloutHarness.StartAsync(spec, folder: folder, orchestration: Durable);
        var during = await second.WaitForStatusAsync(s => s.Snapshot > before.Snapshot, "the new host running the rollout", TimeSpan.FromSeconds(60));
        var end = await second.WaitForEndAsync(TimeSpan.FromSeconds(90));

        // Same phase, same bake, same deadline: the canary was neither restarted nor skipped.
        Assert.Equal(("canary", "bake"), (during.Phase, during.Waiting.Kind));
        Assert.Equal(before.Waiting.Until, during.Waiting.Until);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, end.RuntimeStatus);
        Assert.Equal("completed", end.Result!.Outcome);
        var changes = await second.Rollout.Rollouts.ReadStateHistoryAsync(second.Feature);
        Assert.Equal(["shadow", "canary", "full"], changes.Select(c => c.State.Phase).ToArray());
        Assert.Equal(stopDuringActivity, stall.Reached.Task.IsCompleted);
    }

    private sealed class HealthStall
    {
        public volatile bool Armed;

        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The telemetry's health window, or, once armed, a query that never answers (a host that hangs, then dies).</summary>
    private sealed class StallingHealthSource(IHealthWindowSource inner, HealthStall stall) : IHealthWindowSource
    {
        public async Task<HealthWindow> QueryWindowAsync(string feature, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
        {
            if (stall.Armed)
            {
                stall.Reached.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return await inner.QueryWindowAsync(feature, from, to, cancellationToken);
        }
    }
}
