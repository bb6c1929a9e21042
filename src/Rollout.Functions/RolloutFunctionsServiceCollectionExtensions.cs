using System.ComponentModel.DataAnnotations;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Rollout.Core;
using Rollout.Core.DataPath;
using Rollout.Core.Health;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;
using Rollout.Storage.Cosmos;
using Rollout.Storage.Sqlite;
using Rollout.Storage.SqlServer;
using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Functions;

/// <summary>The Functions app's wiring.</summary>
public static class RolloutFunctionsServiceCollectionExtensions
{
    /// <summary>
    /// Registers the stores of the one feature this app serves (<c>Rollout:SpecPath</c>, relative to the app's
    /// folder) and what the activities, timers and audit endpoint use. In Azure: the source side on Azure SQL
    /// (<c>Rollout:SqlServer</c>), the target on Cosmos DB (<c>Rollout:Cosmos</c>) and health from Application
    /// Insights (<c>Rollout:AzureMonitor:WorkspaceId</c>, required then), and a start-up check that the database was set
    /// up (<see cref="SqlServerStartupCheck"/>). Without them (local development): the embedded SQLite stores under
    /// <c>Rollout:Sqlite:DataDirectory</c>.
    /// </summary>
    /// <param name="services">Services.</param>
    /// <param name="configuration">Configuration (the <c>Rollout:</c> section).</param>
    /// <exception cref="InvalidOperationException">The spec is missing or invalid, or the Azure settings are incomplete.</exception>
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
        var sqlServer = configuration.GetSection(RolloutSqlServerOptions.Section);
        var cosmos = configuration.GetSection(RolloutCosmosOptions.Section);
        var azure = !string.IsNullOrWhiteSpace(sqlServer["ConnectionString"]) || !string.IsNullOrWhiteSpace(cosmos["Endpoint"]) || !string.IsNullOrWhiteSpace(cosmos["ConnectionString"]);
        if (string.IsNullOrWhiteSpace(specPath))
        {
            return azure
                ? throw new InvalidOperationException("Rollout:SqlServer / Rollout:Cosmos are set but Rollout:SpecPath is not: set it to the spec of the feature this app serves (a path in the deployed package, for example specs/orders.rollout.json).")
                : services;
        }

        var spec = LoadSpec(specPath);
        if (!azure)
        {
            // The embedded registration's processor, with the timer's retry limit.
            services.TryAddSingleton(sp =>
            {
                var settings = sp.GetRequiredService<IOptions<RolloutSqliteOptions>>().Value;
                return sp.GetRequiredService<EmbeddedRollout>().Processor(settings.InstanceId, settings.BatchSize, timers.ChangeFeedMaxAttempts);
            });
            services.AddRolloutSqlite(spec, o => configuration.GetSection(RolloutSqliteOptions.Section).Bind(o));
            return services;
        }

        var missing = new List<string>();
        if (string.IsNullOrWhiteSpace(sqlServer["ConnectionString"]))
        {
            missing.Add("Rollout:SqlServer:ConnectionString (the source database, with Authentication=Active Directory Managed Identity)");
        }

        if (string.IsNullOrWhiteSpace(cosmos["Endpoint"]) && string.IsNullOrWhiteSpace(cosmos["ConnectionString"]))
        {
            missing.Add("Rollout:Cosmos:Endpoint (the target account)");
        }

        if (string.IsNullOrWhiteSpace(configuration["Rollout:AzureMonitor:WorkspaceId"]))
        {
            missing.Add("Rollout:AzureMonitor:WorkspaceId (the health source of the rollout's evaluations)");
        }

        if (missing.Count > 0)
        {
            throw new InvalidOperationException("The Azure stores need every one of these settings; missing: " + string.Join("; ", missing) + ".");
        }

        AddAzureStores(services, spec, sqlServer, cosmos, timers);
        services.AddHostedService(sp => new SqlServerStartupCheck(
            ct => SqlServerSchemaCheck.ReadAsync(sp.GetRequiredService<SqlServerConnectionFactory>(), SqlServerTableName.Parse(spec.Source.Table), ct),
            SqlServerStartupCheck.Fix(specPath),
            sp.GetRequiredService<ILogger<SqlServerStartupCheck>>()));
        return services;
    }

    private static RolloutSpec LoadSpec(string specPath)
    {
        var path = Path.IsPathRooted(specPath) ? specPath : Path.Combine(AppContext.BaseDirectory, specPath);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"Rollout:SpecPath '{specPath}' does not exist (looked at {path}): the spec must be deployed with the app.");
        }

        var loaded = RolloutSpecLoader.Load(File.ReadAllText(path));
        return loaded.Spec ?? throw new InvalidOperationException(
            $"Rollout:SpecPath '{specPath}' is not a valid spec: {string.Join("; ", loaded.Problems.Select(p => $"{p.Path}: {p.Message}"))}");
    }

    private static void AddAzureStores(IServiceCollection services, RolloutSpec spec, IConfiguration sqlServer, IConfiguration cosmos, RolloutTimerOptions timers)
    {
        services.TryAddSingleton(spec);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new RolloutMetrics(sp.GetService<IMeterFactory>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(_ => DocumentTranslator.Compile(spec));
        services.AddRolloutSqlServer(spec, sqlServer.Bind);
        services.AddRolloutCosmos(spec, cosmos.Bind);

        // One feed owner among scaled-out instances: the lease names the instance (WEBSITE_INSTANCE_ID in Azure).
        var instance = Environment.GetEnvironmentVariable("WEBSITE_INSTANCE_ID") is { Length: > 0 } id ? id : Environment.MachineName + "-" + Environment.ProcessId;
        services.TryAddSingleton(sp => new DualWriteProcessor(
            spec.Feature,
            sp.GetRequiredService<DocumentTranslator>(),
            sp.GetRequiredService<IChangeFeed>(),
            sp.GetRequiredService<ITargetStore>(),
            sp.GetRequiredService<ICheckpointStore>(),
            sp.GetRequiredService<IDeadLetterStore>(),
            sp.GetRequiredService<ILeaseStore>(),
            new DualWriteOptions { InstanceId = instance, MaxAttempts = timers.ChangeFeedMaxAttempts },
            sp.GetRequiredService<TimeProvider>(),
            metrics: sp.GetRequiredService<RolloutMetrics>()));
        // A reconciler holds the state of its run: one per run, never shared by a timer and an activity.
        services.TryAddTransient(sp => new Reconciler(
            spec.Feature,
            sp.GetRequiredService<DocumentTranslator>(),
            sp.GetRequiredService<IReconcileSource>(),
            sp.GetRequiredService<IReconcileTarget>(),
            sp.GetRequiredService<ITargetStore>(),
            sp.GetRequiredService<IReconcileAuditStore>(),
            sp.GetRequiredService<TimeProvider>(),
            metrics: sp.GetRequiredService<RolloutMetrics>()));
        services.TryAddSingleton<IReconciliationTrigger>(sp => new ReconcilerTrigger(spec.Feature, sp.GetRequiredService<Reconciler>, new ReconcileOptions
        {
            Depth = ReconcileDepth.Quick,
            Mode = spec.Reconciliation.Repair,
            MaxRowsPerSecond = spec.Reconciliation.MaxRowsPerSecond,
        }, sp.GetRequiredService<ILeaseStore>(), instance));
    }
}
