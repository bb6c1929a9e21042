using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class RegistrationTests
{
    [Fact]
    public async Task AddRolloutSqlite_wires_the_stores_and_services_of_one_rollout()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
        var spec = RolloutSpecLoader.Load(Pipeline.SpecJson).Spec!;
        var services = new ServiceCollection().AddRolloutSqlite(spec, o => { o.DataDirectory = folder; o.BatchSize = 10; o.InstanceId = "test"; });
        await using (var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true }))
        {
            var rollout = provider.GetRequiredService<EmbeddedRollout>();

            Assert.Equal(Path.GetFullPath(Path.Combine(folder, "orders-v2")), rollout.Folder);
            Assert.Same(rollout.Source, provider.GetRequiredService<IChangeFeed>());
            Assert.Same(rollout.Target, provider.GetRequiredService<ITargetStore>());
            Assert.Same(rollout.Audit, provider.GetRequiredService<IReconcileAuditStore>());
            Assert.NotNull(provider.GetRequiredService<RolloutGate>());
            Assert.Equal("orders-v2/dualwrite", provider.GetRequiredService<DualWriteProcessor>().FeedName);
            Assert.NotNull(provider.GetRequiredService<Reconciler>());
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public void Invalid_options_are_refused_with_the_failing_setting()
    {
        var spec = RolloutSpecLoader.Load(Pipeline.SpecJson).Spec!;
        using var provider = new ServiceCollection().AddRolloutSqlite(spec, o => { o.DataDirectory = ""; o.BatchSize = 0; }).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<RolloutSqliteOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("DataDirectory", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("BatchSize", StringComparison.Ordinal));
    }
}
