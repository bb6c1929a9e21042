using Microsoft.DurableTask.Client;
using Rollout.Core.Spec;
using Rollout.Orchestration.Hosting;

namespace Rollout.Orchestration.Tests;

/// <summary>
/// The durable backend: the Durable Task sidecar over the Azure Storage backend (as Durable Functions uses in
/// Azure) against Azurite. A host stopped in the middle of a bake (nothing drained) is replaced by a new one, which
/// carries on. The same with a real process kill (SIGKILL) is DurableRunTests in the CLI tests.
/// </summary>
public sealed class DurableBackendTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task A_host_stopped_in_the_middle_of_a_bake_is_resumed_by_a_new_host_from_where_it_was()
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

        var first = await RolloutHarness.StartAsync(spec, orchestration: Durable);
        string folder = first.Folder;
        RolloutStatusView before;
        try
        {
            await first.StartRolloutAsync();
            before = await first.WaitForStatusAsync(s => s.Phase == "canary" && s.Status == "baking", "canary baking", TimeSpan.FromSeconds(60));
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
    }
}
