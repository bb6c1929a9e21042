using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;
using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Functions;

/// <summary>The Functions app's wiring.</summary>
public static class RolloutFunctionsServiceCollectionExtensions
{
    /// <summary>
    /// Registers the stores the activities and the audit endpoint use. Until the Azure adapters exist (Azure SQL,
    /// Cosmos DB), the one store wired here is the embedded default for a single feature: set
    /// <c>Rollout:SpecPath</c> to its spec and <c>Rollout:Sqlite:DataDirectory</c> to a folder (local development).
    /// </summary>
    /// <param name="services">Services.</param>
    /// <param name="configuration">Configuration (the <c>Rollout:</c> section).</param>
    public static IServiceCollection AddRolloutFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var timers = new RolloutTimerOptions();
        configuration.GetSection(RolloutTimerOptions.Section).Bind(timers);
        Validator.ValidateObject(timers, new ValidationContext(timers), validateAllProperties: true);
        services.AddSingleton(timers);

        // Before the stores: where a Log Analytics workspace is configured, health comes from Application Insights
        // (the stores register theirs only where none is).
        services.AddRolloutAzureMonitor(configuration);

        var specPath = configuration["Rollout:SpecPath"];
        if (!string.IsNullOrWhiteSpace(specPath))
        {
            var loaded = RolloutSpecLoader.Load(File.ReadAllText(specPath));
            var spec = loaded.Spec ?? throw new InvalidOperationException(
                $"Rollout:SpecPath '{specPath}' is not a valid spec: {string.Join("; ", loaded.Problems.Select(p => $"{p.Path}: {p.Message}"))}");
            services.AddRolloutSqlite(spec, o => configuration.GetSection(RolloutSqliteOptions.Section).Bind(o));
        }

        return services;
    }
}
