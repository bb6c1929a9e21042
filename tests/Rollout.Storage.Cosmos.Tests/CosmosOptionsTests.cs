using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Cosmos.Tests;

public sealed class CosmosOptionsTests
{
    private const string Secret = "c2VjcmV0LWtleS1kby1ub3QtbG9n";

    private static readonly RolloutSpec Spec = RolloutSpecLoader.Load("""
        {
          "feature": "orders-v2",
          "source": { "table": "dbo.Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": { "id": { "from": "OrderId", "convert": "string" }, "customerId": { "from": "CustomerId", "convert": "string" } },
          "phases": [ { "name": "full", "exposure": 100, "bake": "PT1M" } ]
        }
        """).Spec!;

    private static List<string> Problems(RolloutCosmosOptions options)
    {
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true);
        return [.. results.SelectMany(r => r.MemberNames)];
    }

    [Fact]
    public void Endpoint_with_a_key_or_a_managed_identity_or_a_connection_string_alone_is_valid()
    {
        Assert.Empty(Problems(new() { Endpoint = new Uri("https://acct.documents.azure.com:443/"), Key = Secret }));
        Assert.Empty(Problems(new() { Endpoint = new Uri("https://acct.documents.azure.com:443/"), UseManagedIdentity = true }));
        Assert.Empty(Problems(new() { Endpoint = new Uri("https://acct.documents.azure.com:443/"), Credential = new DefaultAzureCredential() }));
        Assert.Empty(Problems(new() { ConnectionString = $"AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey={Secret};" }));
    }

    [Fact]
    public void Missing_or_conflicting_settings_are_each_reported()
    {
        Assert.Contains(nameof(RolloutCosmosOptions.Endpoint), Problems(new()));
        Assert.Contains(nameof(RolloutCosmosOptions.Key), Problems(new() { Endpoint = new Uri("https://acct.documents.azure.com/") }));
        Assert.Contains(nameof(RolloutCosmosOptions.Key), Problems(new() { Endpoint = new Uri("https://acct.documents.azure.com/"), Key = Secret, UseManagedIdentity = true }));
        Assert.Contains(nameof(RolloutCosmosOptions.Endpoint), Problems(new() { Endpoint = new Uri("http://acct.documents.azure.com/"), Key = Secret }));
        Assert.Contains(nameof(RolloutCosmosOptions.AcceptLocalEmulatorCertificate),
            Problems(new() { Endpoint = new Uri("https://acct.documents.azure.com/"), Key = Secret, AcceptLocalEmulatorCertificate = true }));
        Assert.Empty(Problems(new() { Endpoint = new Uri("https://127.0.0.1:8081/"), Key = Secret, AcceptLocalEmulatorCertificate = true }));
        Assert.Contains(nameof(RolloutCosmosOptions.Container), Problems(new() { ConnectionString = "x", Container = "bad name" }));
        Assert.Contains(nameof(RolloutCosmosOptions.PartitionKeyPath), Problems(new() { ConnectionString = "x", PartitionKeyPath = "customerId" }));
        Assert.Contains(nameof(RolloutCosmosOptions.Database), Problems(new() { ConnectionString = "x", Database = "bad name; drop" }));
        Assert.Contains(nameof(RolloutCosmosOptions.MaxConcurrency), Problems(new() { ConnectionString = "x", MaxConcurrency = 0 }));
    }

    [Fact]
    public void The_description_of_the_options_never_holds_a_secret()
    {
        var text = new RolloutCosmosOptions { Endpoint = new Uri("https://acct.documents.azure.com:443/"), Key = Secret }.ToString()
            + new RolloutCosmosOptions { ConnectionString = $"AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey={Secret};" }.ToString();

        Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
        Assert.Contains("acct.documents.azure.com", text, StringComparison.Ordinal);
    }

    [Fact]
    public void AddRolloutCosmos_registers_one_store_for_both_ports_on_the_specs_container()
    {
        using var provider = new ServiceCollection()
            .AddRolloutCosmos(Spec, o => { o.Endpoint = new Uri("https://127.0.0.1:8081/"); o.Key = Secret; o.AcceptLocalEmulatorCertificate = true; o.Database = "db1"; })
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

        var store = provider.GetRequiredService<CosmosTargetStore>();

        Assert.Same(store, provider.GetRequiredService<ITargetStore>());
        Assert.Same(store, provider.GetRequiredService<IReconcileTarget>());
        Assert.Equal(("db1", "orders"), (store.Container.Database.Id, store.Container.Id));
        Assert.True(provider.GetRequiredService<Microsoft.Azure.Cosmos.CosmosClient>().ClientOptions.AllowBulkExecution);
    }

    [Fact]
    public void Invalid_options_fail_when_the_options_are_first_used()
    {
        using var provider = new ServiceCollection().AddRolloutCosmos(Spec, o => o.MaxConcurrency = 0).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<RolloutCosmosOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("MaxConcurrency", StringComparison.Ordinal));

        // Cross-field rules (IValidatableObject) run once the single-field ones pass.
        using var second = new ServiceCollection().AddRolloutCosmos(Spec).BuildServiceProvider();
        var missing = Assert.Throws<OptionsValidationException>(() => second.GetRequiredService<IOptions<RolloutCosmosOptions>>().Value);
        Assert.Contains(missing.Failures, f => f.Contains("Endpoint", StringComparison.Ordinal));
    }

    [Fact]
    public void Client_factory_refuses_invalid_options_and_never_echoes_the_key()
    {
        var error = Assert.Throws<ArgumentException>(() => CosmosClientFactory.Create(new RolloutCosmosOptions { Key = Secret }));

        Assert.DoesNotContain(Secret, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Client_uses_the_retry_and_bulk_settings_and_system_text_json()
    {
        using var client = CosmosClientFactory.Create(new RolloutCosmosOptions
        {
            Endpoint = new Uri("https://127.0.0.1:8081/"), Key = Secret, AcceptLocalEmulatorCertificate = true,
            AllowBulkExecution = false, MaxRetryAttemptsOnRateLimitedRequests = 3, MaxRetryWaitTimeOnRateLimitedRequests = TimeSpan.FromSeconds(7),
        });

        Assert.False(client.ClientOptions.AllowBulkExecution);
        Assert.Equal(3, client.ClientOptions.MaxRetryAttemptsOnRateLimitedRequests);
        Assert.Equal(TimeSpan.FromSeconds(7), client.ClientOptions.MaxRetryWaitTimeOnRateLimitedRequests);
        Assert.NotNull(client.ClientOptions.UseSystemTextJsonSerializerWithOptions);
        Assert.True(client.ClientOptions.LimitToEndpoint);
        Assert.Equal(Microsoft.Azure.Cosmos.ConnectionMode.Gateway, client.ClientOptions.ConnectionMode);
    }
}
