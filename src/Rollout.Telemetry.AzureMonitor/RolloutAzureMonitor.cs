using System.ComponentModel.DataAnnotations;
using Azure.Core;
using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Rollout.Core.Health;
using Rollout.Core;

namespace Rollout.Telemetry.AzureMonitor;

/// <summary>Azure Monitor settings (section <c>Rollout:AzureMonitor</c>). No key: Entra ID everywhere.</summary>
public sealed class RolloutAzureMonitorOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "Rollout:AzureMonitor";

    /// <summary>
    /// Application Insights connection string (not a secret: it names the resource; with local authentication
    /// disabled on it, the exporter authenticates with <see cref="ManagedIdentityClientId"/>'s token). Defaults to
    /// the <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> setting the Functions platform sets.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The Log Analytics workspace id (a GUID) of the Application Insights resource, for health queries.</summary>
    [RegularExpression("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", ErrorMessage = "Rollout:AzureMonitor:WorkspaceId must be the workspace's id, a GUID (Log Analytics workspace > Overview > Workspace ID).")]
    public string? WorkspaceId { get; set; }

    /// <summary>The query API's endpoint (another cloud's, for example).</summary>
    public Uri QueryEndpoint { get; set; } = new("https://api.loganalytics.io/");

    /// <summary>Client id of a user-assigned managed identity; empty for the system-assigned one (or a developer's login locally).</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>
    /// How far behind real time the workspace is: telemetry is exported about once a minute and ingested within a few
    /// more. A window asked for ending now is read ending this long ago, so that it is not judged half empty.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:30:00", ErrorMessage = "Rollout:AzureMonitor:IngestionDelay must be between 0 and 30 min.")]
    public TimeSpan IngestionDelay { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>Share of the gate's request spans exported (metrics are always complete). 1 keeps them all.</summary>
    [Range(0.01, 1.0)]
    public float TraceSamplingRatio { get; set; } = 1.0f;
}

/// <summary>Registration of Azure Monitor for a rollout.</summary>
public static class RolloutAzureMonitorServiceCollectionExtensions
{
    /// <summary>
    /// Exports the rollout's meters and spans (<see cref="RolloutMetrics.Name"/>) to Application Insights with
    /// OpenTelemetry, and registers <see cref="LogAnalyticsHealthWindowSource"/> as the health window source
    /// when a workspace is configured.
    /// </summary>
    /// <param name="services">Services.</param>
    /// <param name="configuration">Configuration.</param>
    /// <exception cref="ValidationException">The settings are invalid.</exception>
    public static IServiceCollection AddRolloutAzureMonitor(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new RolloutAzureMonitorOptions();
        configuration.GetSection(RolloutAzureMonitorOptions.Section).Bind(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            // An empty setting (as in local.settings.sample.json) falls back like a missing one.
            options.ConnectionString = configuration["APPLICATIONINSIGHTS_CONNECTION_STRING"];
        }
        Validator.ValidateObject(options, new ValidationContext(options), validateAllProperties: true);

        TokenCredential credential = string.IsNullOrWhiteSpace(options.ManagedIdentityClientId)
            ? new DefaultAzureCredential()
            : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(options.ManagedIdentityClientId));
        services.TryAddSingleton(options);
        services.TryAddSingleton(credential);

        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            services.AddOpenTelemetry()
                .WithMetrics(metrics => metrics.AddMeter(RolloutMetrics.Name))
                .WithTracing(tracing => tracing.AddSource(RolloutMetrics.Name))
                .UseAzureMonitorExporter(exporter =>
                {
                    exporter.ConnectionString = options.ConnectionString;
                    exporter.Credential = credential;
                    exporter.SamplingRatio = options.TraceSamplingRatio;
                });
        }

        if (!string.IsNullOrWhiteSpace(options.WorkspaceId))
        {
            services.AddSingleton<IHealthWindowSource>(sp => new LogAnalyticsHealthWindowSource(
                new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = TimeSpan.FromSeconds(60) },
                sp.GetRequiredService<TokenCredential>(),
                options,
                sp.GetRequiredService<ILogger<LogAnalyticsHealthWindowSource>>()));
        }

        return services;
    }
}
