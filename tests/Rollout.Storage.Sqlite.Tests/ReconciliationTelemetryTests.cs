using Microsoft.Extensions.Time.Testing;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class ReconciliationTelemetryTests
{
    [Fact]
    public async Task A_completed_run_publishes_its_drift_rate_and_age_to_the_health_window()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero));
        await using var rollout = EmbeddedRollout.Open(folder, RolloutSpecLoader.Load(Pipeline.SpecJson).Spec!, time);
        await SourceSeeder.CreateTableAsync(rollout);
        await rollout.InitializeAsync();
        await SourceSeeder.SeedAsync(rollout, 100, seed: 1);
        await rollout.Processor("p").DrainAsync(CancellationToken.None);
        await using (var connection = await rollout.TargetDatabase.OpenAsync())
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "UPDATE documents_orders SET source_version = source_version + 10 WHERE source_key IN ('[5]', '[6]')";
            await command.ExecuteNonQueryAsync();
        }

        await rollout.Reconciler().RunAsync(rollout.ReconcileOptions(ReconcileDepth.Quick), null, CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(5));
        await rollout.Reconciler().RunAsync(rollout.ReconcileOptions(ReconcileDepth.Quick), null, CancellationToken.None);
        var window = await rollout.Telemetry.QueryWindowAsync("orders-v2", time.GetUtcNow().AddMinutes(-1), time.GetUtcNow().AddMinutes(1));
        var runs = await rollout.Audit.ListRunsAsync("orders-v2", 5, CancellationToken.None);
        var since = await rollout.Audit.OldestUnresolvedSinceAsync(runs[0].Id, CancellationToken.None);

        Assert.Equal((100L, 2L, true), (window.Drift.Compared, window.Drift.Drifted, window.Drift.FullPass));
        Assert.Equal(TimeSpan.FromMinutes(5), time.GetUtcNow() - since);
        await rollout.DisposeAsync();
        Directory.Delete(folder, recursive: true);
    }
}
