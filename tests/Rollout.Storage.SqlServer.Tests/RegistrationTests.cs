using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class RegistrationTests
{
    private const string SpecJson = """
        {
          "feature": "orders-v2",
          "source": { "table": "sales.Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": { "id": { "from": "OrderId", "convert": "string" }, "customerId": { "from": "CustomerId", "convert": "string" } },
          "phases": [ { "name": "full", "exposure": 100, "bake": "PT1M" } ]
        }
        """;

    [Fact]
    public void AddRolloutSqlServer_wires_the_source_side_ports_without_connecting()
    {
        var spec = RolloutSpecLoader.Load(SpecJson).Spec!;
        using var provider = new ServiceCollection()
            .AddRolloutSqlServer(spec, o => o.ConnectionString = "Server=tcp:db.example.net,1433;Database=orders;Authentication=Active Directory Managed Identity")
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

        var source = provider.GetRequiredService<SqlServerSourceStore>();
        Assert.Equal("[sales].[Orders]", source.Table.Quoted);
        Assert.Same(source, provider.GetRequiredService<IChangeFeed>());
        Assert.Same(source, provider.GetRequiredService<IReconcileSource>());
        Assert.Same(provider.GetRequiredService<SqlServerStateStore>(), provider.GetRequiredService<ICheckpointStore>());
        Assert.Same(provider.GetRequiredService<SqlServerStateStore>(), provider.GetRequiredService<ILeaseStore>());
        Assert.Same(provider.GetRequiredService<SqlServerStateStore>(), provider.GetRequiredService<IBackfillProgressStore>());
        Assert.IsType<SqlServerDeadLetterStore>(provider.GetRequiredService<IDeadLetterStore>());
        Assert.IsType<SqlServerAuditStore>(provider.GetRequiredService<IReconcileAuditStore>());
        Assert.Same(provider.GetRequiredService<SqlServerRolloutStore>(), provider.GetRequiredService<IGateStore>());
        Assert.Same(provider.GetRequiredService<SqlServerRolloutStore>(), provider.GetRequiredService<IExposureStateStore>());
        Assert.Same(provider.GetRequiredService<SqlServerRolloutStore>(), provider.GetRequiredService<Rollout.Core.Plan.IRolloutJournal>());
        Assert.Equal("tcp:db.example.net,1433/orders", provider.GetRequiredService<SqlServerConnectionFactory>().Description);
    }

    [Fact]
    public void A_missing_connection_string_or_a_bad_timeout_is_refused_with_the_failing_setting()
    {
        var spec = RolloutSpecLoader.Load(SpecJson).Spec!;
        using var provider = new ServiceCollection().AddRolloutSqlServer(spec, o => o.CommandTimeoutSeconds = 0).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<RolloutSqlServerOptions>>().Value);
        Assert.Contains(error.Failures, f => f.Contains(nameof(RolloutSqlServerOptions.ConnectionString), StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(RolloutSqlServerOptions.CommandTimeoutSeconds), StringComparison.Ordinal));
    }
}
