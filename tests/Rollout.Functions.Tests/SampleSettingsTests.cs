using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Rollout.Storage.Cosmos;
using Rollout.Storage.Sqlite;
using Rollout.Storage.SqlServer;
using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Functions.Tests;

/// <summary>local.settings.sample.json documents every setting the app binds, with values that bind, and no secret.</summary>
public sealed class SampleSettingsTests
{
    /// <summary>Every options class the Functions app binds from configuration, by its section.</summary>
    private static readonly Type[] Bound = [typeof(RolloutTimerOptions), typeof(RolloutSqliteOptions), typeof(RolloutSqlServerOptions), typeof(RolloutCosmosOptions), typeof(RolloutAzureMonitorOptions)];

    private static readonly Type[] Scalars = [typeof(string), typeof(bool), typeof(int), typeof(long), typeof(float), typeof(double), typeof(decimal), typeof(TimeSpan), typeof(Uri)];

    [Fact]
    public void Every_settable_property_of_every_bound_options_class_is_in_the_sample()
    {
        var values = Values();
        var skipped = new List<string>();
        var missing = new List<string>();
        foreach (var type in Bound)
        {
            var section = (string)type.GetField("Section", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
            {
                var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (!Scalars.Contains(propertyType) && !propertyType.IsEnum)
                {
                    skipped.Add($"{type.Name}.{property.Name}"); // not bindable from a setting
                    continue;
                }

                var key = section.Replace(":", "__", StringComparison.Ordinal) + "__" + property.Name;
                if (!values.ContainsKey(key))
                {
                    missing.Add(key);
                }
            }
        }

        Assert.Empty(missing);
        Assert.Equal(["RolloutCosmosOptions.Credential"], skipped); // a TokenCredential, set in code only
        Assert.True(values.ContainsKey("Rollout__SpecPath"));
    }

    [Fact]
    public void The_sample_holds_no_secret_and_its_values_bind_and_validate()
    {
        var values = Values();
        foreach (var (key, value) in values.Where(v => v.Key.EndsWith("ConnectionString", StringComparison.Ordinal) || v.Key.EndsWith("CONNECTION_STRING", StringComparison.Ordinal) || v.Key.EndsWith("Key", StringComparison.Ordinal)))
        {
            Assert.True(value.Length == 0, $"{key} has a value in the sample; secrets (and connection strings) never go there");
        }

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key.Replace("__", ":", StringComparison.Ordinal), v.Value)))
            .Build();
        var timers = configuration.GetSection(RolloutTimerOptions.Section).Get<RolloutTimerOptions>()!;
        var sqlite = configuration.GetSection(RolloutSqliteOptions.Section).Get<RolloutSqliteOptions>()!;
        var monitor = configuration.GetSection(RolloutAzureMonitorOptions.Section).Get<RolloutAzureMonitorOptions>()!;
        var sqlServer = configuration.GetSection(RolloutSqlServerOptions.Section).Get<RolloutSqlServerOptions>()!;
        var cosmos = configuration.GetSection(RolloutCosmosOptions.Section).Get<RolloutCosmosOptions>()!;

        // What a local run validates passes as the sample stands; the Azure sections bind (they need an endpoint to validate).
        foreach (var options in new object[] { timers, sqlite, monitor })
        {
            Validator.ValidateObject(options, new ValidationContext(options), validateAllProperties: true);
        }

        Assert.Equal(30, sqlServer.CommandTimeoutSeconds);
        Assert.Equal((true, 9, TimeSpan.FromSeconds(30), 32, 20), (cosmos.AllowBulkExecution, cosmos.MaxRetryAttemptsOnRateLimitedRequests, cosmos.MaxRetryWaitTimeOnRateLimitedRequests, cosmos.MaxConcurrency, cosmos.MaxConcurrencyRetries));
        Assert.Equal(("/customerId", (int?)null, false), (cosmos.PartitionKeyPath, cosmos.ContainerThroughput, cosmos.CreateIfNotExists));
        Assert.Equal(new Uri("https://api.loganalytics.io/"), monitor.QueryEndpoint);
    }

    private static Dictionary<string, string> Values()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Rollout.Functions.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found");
        }

        using var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "local.settings.sample.json")));
        return sample.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
    }
}
