using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Health;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;
using Rollout.Storage.Cosmos;
using Rollout.Storage.Sqlite;
using Rollout.Storage.SqlServer;
using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Functions.Tests;

/// <summary>
/// The app's wiring: with the Azure settings, every port the activities and timers take resolves to the Azure
/// adapters (nothing connects until used); without them, to the embedded stores; incomplete settings are refused
/// with what is missing.
/// </summary>
public sealed class WiringTests
{
    private const string Workspace = "4d6a1c2e-7f3b-4a9d-8e1f-0a2b3c4d5e6f";

    [Fact]
    public void With_the_azure_settings_the_source_side_is_azure_sql_the_target_cosmos_and_health_application_insights()
    {
        using var provider = Build(
            ("Rollout:SpecPath", "specs/orders.rollout.json"),
            ("Rollout:SqlServer:ConnectionString", "Server=tcp:sql-rollout.database.windows.net,1433;Database=rollout;Authentication=Active Directory Managed Identity;User Id=00000000-0000-0000-0000-000000000001"),
            ("Rollout:Cosmos:Endpoint", "https://cosmos-rollout.documents.azure.com:443/"),
            ("Rollout:Cosmos:UseManagedIdentity", "true"),
            ("Rollout:Cosmos:ManagedIdentityClientId", "00000000-0000-0000-0000-000000000001"),
            ("Rollout:AzureMonitor:WorkspaceId", Workspace),
            ("Rollout:Timers:ChangeFeedMaxAttempts", "3"));

        Assert.Equal(3, provider.GetRequiredService<DualWriteProcessor>().Options.MaxAttempts);
        Assert.Single(provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<SqlServerStartupCheck>());
        Assert.IsType<SqlServerSourceStore>(provider.GetRequiredService<IChangeFeed>());
        Assert.IsType<SqlServerSourceStore>(provider.GetRequiredService<IReconcileSource>());
        Assert.IsType<CosmosTargetStore>(provider.GetRequiredService<ITargetStore>());
        Assert.IsType<CosmosTargetStore>(provider.GetRequiredService<IReconcileTarget>());
        Assert.IsType<SqlServerStateStore>(provider.GetRequiredService<ICheckpointStore>());
        Assert.IsType<SqlServerStateStore>(provider.GetRequiredService<ILeaseStore>());
        Assert.IsType<SqlServerRolloutStore>(provider.GetRequiredService<IExposureStateStore>());
        Assert.IsType<SqlServerRolloutStore>(provider.GetRequiredService<IRolloutJournal>());
        Assert.IsType<SqlServerAuditStore>(provider.GetRequiredService<IReconcileAuditStore>());
        Assert.IsType<LogAnalyticsHealthWindowSource>(provider.GetRequiredService<IHealthWindowSource>());
        Assert.IsType<ReconcilerTrigger>(provider.GetRequiredService<IReconciliationTrigger>());
        Assert.Equal("orders-v2/dualwrite", provider.GetRequiredService<DualWriteProcessor>().FeedName);
        Assert.Null(provider.GetService<EmbeddedRollout>());
    }

    [Fact]
    public async Task Without_them_the_feature_runs_on_the_embedded_stores()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-wiring-" + Guid.NewGuid().ToString("N")[..8]);
        await using var provider = Build(("Rollout:SpecPath", "specs/orders.rollout.json"), ("Rollout:Sqlite:DataDirectory", folder), ("Rollout:Timers:ChangeFeedMaxAttempts", "2"));

        Assert.IsType<SqliteSourceStore>(provider.GetRequiredService<IChangeFeed>());
        Assert.IsType<SqliteTargetStore>(provider.GetRequiredService<ITargetStore>());
        Assert.IsType<SqliteTelemetryStore>(provider.GetRequiredService<IHealthWindowSource>());
        Assert.Equal(2, provider.GetRequiredService<DualWriteProcessor>().Options.MaxAttempts);
        Assert.Empty(provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<SqlServerStartupCheck>());
        await provider.DisposeAsync();
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public void Incomplete_azure_settings_and_a_missing_spec_are_refused_with_what_to_set()
    {
        var partial = Assert.Throws<InvalidOperationException>(() => Build(
            ("Rollout:SpecPath", "specs/orders.rollout.json"),
            ("Rollout:SqlServer:ConnectionString", "Server=tcp:x.database.windows.net;Authentication=Active Directory Default")));
        var noSpec = Assert.Throws<InvalidOperationException>(() => Build(("Rollout:Cosmos:Endpoint", "https://x.documents.azure.com:443/")));
        var wrongPath = Assert.Throws<InvalidOperationException>(() => Build(("Rollout:SpecPath", "specs/nothing.rollout.json")));

        Assert.Contains("missing: Rollout:Cosmos:Endpoint", partial.Message, StringComparison.Ordinal);
        Assert.Contains("Rollout:AzureMonitor:WorkspaceId", partial.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Rollout:SqlServer:ConnectionString", partial.Message, StringComparison.Ordinal);
        Assert.Contains("Rollout:SpecPath is not", noSpec.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", wrongPath.Message, StringComparison.Ordinal);
    }

    private static ServiceProvider Build(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddRolloutFunctions(configuration);
        return services.BuildServiceProvider();
    }
}
