using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer;

/// <summary>Settings of the SQL Server adapter (configuration section <c>Rollout:SqlServer</c>).</summary>
public sealed class RolloutSqlServerOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "Rollout:SqlServer";

    /// <summary>
    /// ADO.NET connection string of the source database. In Azure, no secret: <c>Authentication=Active Directory Managed Identity</c>
    /// (or <c>Active Directory Default</c> locally). Never logged.
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>Timeout of every command, in seconds.</summary>
    [Range(1, 3600)]
    public int CommandTimeoutSeconds { get; set; } = 30;
}

/// <summary>DI registration of the SQL Server adapter.</summary>
public static class SqlServerServiceCollectionExtensions
{
    /// <summary>
    /// Registers the SQL Server stores of one rollout's source side: the source store (<see cref="IChangeFeed"/>,
    /// <see cref="IReconcileSource"/>, <see cref="ISourceReader"/>), checkpoints, leases and backfill progress, dead letters, exposure state,
    /// the gate store, the rollout journal and the reconciliation audit. Ports are added only if not registered yet, so call this before a registration that would provide
    /// them otherwise. Options are validated when the host starts.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="spec">A validated spec.</param>
    /// <param name="configure">Option overrides.</param>
    public static IServiceCollection AddRolloutSqlServer(this IServiceCollection services, RolloutSpec spec, Action<RolloutSqlServerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(spec);
        var options = services.AddOptions<RolloutSqlServerOptions>().ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var settings = sp.GetRequiredService<IOptions<RolloutSqlServerOptions>>().Value;
            return new SqlServerConnectionFactory(settings.ConnectionString, settings.CommandTimeoutSeconds);
        });
        services.TryAddSingleton(sp => SqlServerSourceStore.For(sp.GetRequiredService<SqlServerConnectionFactory>(), spec, DocumentTranslator.Compile(spec)));
        services.TryAddSingleton(sp => new SqlServerStateStore(sp.GetRequiredService<SqlServerConnectionFactory>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new SqlServerDeadLetterStore(sp.GetRequiredService<SqlServerConnectionFactory>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new SqlServerRolloutStore(sp.GetRequiredService<SqlServerConnectionFactory>(), spec.Source.Table, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IChangeFeed>(sp => sp.GetRequiredService<SqlServerSourceStore>());
        services.TryAddSingleton<IReconcileSource>(sp => sp.GetRequiredService<SqlServerSourceStore>());
        services.TryAddSingleton<ISourceReader>(sp => sp.GetRequiredService<SqlServerSourceStore>());
        services.TryAddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<SqlServerStateStore>());
        services.TryAddSingleton<ILeaseStore>(sp => sp.GetRequiredService<SqlServerStateStore>());
        services.TryAddSingleton<IBackfillProgressStore>(sp => sp.GetRequiredService<SqlServerStateStore>());
        services.TryAddSingleton<IDeadLetterStore>(sp => sp.GetRequiredService<SqlServerDeadLetterStore>());
        services.TryAddSingleton<IExposureStateStore>(sp => sp.GetRequiredService<SqlServerRolloutStore>());
        services.TryAddSingleton<IGateStore>(sp => sp.GetRequiredService<SqlServerRolloutStore>());
        services.TryAddSingleton<IRolloutJournal>(sp => sp.GetRequiredService<SqlServerRolloutStore>());
        services.TryAddSingleton<IReconcileAuditStore>(sp => new SqlServerAuditStore(sp.GetRequiredService<SqlServerConnectionFactory>()));
        return services;
    }
}
