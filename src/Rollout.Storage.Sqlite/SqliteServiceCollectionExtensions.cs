using System.ComponentModel.DataAnnotations;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Rollout.Core;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Health;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite;

/// <summary>Settings of the embedded default (configuration section <c>Rollout:Sqlite</c>).</summary>
public sealed class RolloutSqliteOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "Rollout:Sqlite";

    /// <summary>Folder of source.db, target.db and telemetry.db.</summary>
    [Required(AllowEmptyStrings = false)]
    public string DataDirectory { get; set; } = ".rollout";

    /// <summary>Instance id that owns the dual-write lease (unique per process).</summary>
    [Required(AllowEmptyStrings = false)]
    public string InstanceId { get; set; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>Changes per dual-write batch.</summary>
    [Range(1, 1_000_000)]
    public int BatchSize { get; set; } = 5000;
}

/// <summary>DI registration of the embedded default.</summary>
public static class SqliteServiceCollectionExtensions
{
    /// <summary>
    /// Registers the embedded stores of one rollout and the core services on them: <see cref="EmbeddedRollout"/>,
    /// the ports it implements, the gate, the dual-write processor, the backfill and the reconciler. Options are
    /// validated when the host starts.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="spec">A validated spec.</param>
    /// <param name="configure">Option overrides.</param>
    public static IServiceCollection AddRolloutSqlite(this IServiceCollection services, RolloutSpec spec, Action<RolloutSqliteOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(spec);
        var options = services.AddOptions<RolloutSqliteOptions>().ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new RolloutMetrics(sp.GetService<IMeterFactory>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(spec);
        services.TryAddSingleton(sp => EmbeddedRollout.Open(
            Path.Combine(sp.GetRequiredService<IOptions<RolloutSqliteOptions>>().Value.DataDirectory, spec.Feature),
            spec,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<RolloutMetrics>()));
        services.TryAddSingleton<IChangeFeed>(sp => sp.GetRequiredService<EmbeddedRollout>().Source);
        services.TryAddSingleton<IReconcileSource>(sp => sp.GetRequiredService<EmbeddedRollout>().Source);
        services.TryAddSingleton<ITargetStore>(sp => sp.GetRequiredService<EmbeddedRollout>().Target);
        services.TryAddSingleton<IReconcileTarget>(sp => sp.GetRequiredService<EmbeddedRollout>().Target);
        services.TryAddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<EmbeddedRollout>().Target);
        services.TryAddSingleton<IDeadLetterStore>(sp => sp.GetRequiredService<EmbeddedRollout>().Target);
        services.TryAddSingleton<ILeaseStore>(sp => sp.GetRequiredService<EmbeddedRollout>().Target);
        services.TryAddSingleton<IReconcileAuditStore>(sp => sp.GetRequiredService<EmbeddedRollout>().Audit);
        services.TryAddSingleton<IExposureStateStore>(sp => sp.GetRequiredService<EmbeddedRollout>().Rollouts);
        services.TryAddSingleton<ITelemetrySink>(sp => sp.GetRequiredService<EmbeddedRollout>().Telemetry);
        services.TryAddSingleton<IHealthWindowSource>(sp => sp.GetRequiredService<EmbeddedRollout>().Telemetry);
        services.TryAddSingleton<IRolloutJournal>(sp => sp.GetRequiredService<EmbeddedRollout>().Rollouts);
        services.TryAddSingleton<IReconciliationTrigger>(sp => new EmbeddedReconciliationTrigger(sp.GetRequiredService<EmbeddedRollout>()));
        services.TryAddSingleton(sp => sp.GetRequiredService<EmbeddedRollout>().Gate());
        services.TryAddSingleton(sp =>
        {
            var settings = sp.GetRequiredService<IOptions<RolloutSqliteOptions>>().Value;
            return sp.GetRequiredService<EmbeddedRollout>().Processor(settings.InstanceId, settings.BatchSize);
        });
        services.TryAddSingleton(sp => sp.GetRequiredService<EmbeddedRollout>().Backfill());
        services.TryAddSingleton(sp => sp.GetRequiredService<EmbeddedRollout>().Reconciler());
        return services;
    }
}
