using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Cosmos;

/// <summary>DI registration of the Cosmos DB target.</summary>
public static class CosmosServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Cosmos target of one rollout: the options (section <see cref="RolloutCosmosOptions.Section"/>, validated
    /// at start-up), one <see cref="CosmosClient"/>, and <see cref="CosmosTargetStore"/> as <see cref="ITargetStore"/> and
    /// <see cref="IReconcileTarget"/>. Container and partition key path default to the spec's target.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="spec">A validated spec.</param>
    /// <param name="configure">Option overrides.</param>
    public static IServiceCollection AddRolloutCosmos(this IServiceCollection services, RolloutSpec spec, Action<RolloutCosmosOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(spec);
        var options = services.AddOptions<RolloutCosmosOptions>().ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(sp => CosmosClientFactory.Create(sp.GetRequiredService<IOptions<RolloutCosmosOptions>>().Value));
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<RolloutCosmosOptions>>().Value;
            var container = sp.GetRequiredService<CosmosClient>().GetContainer(o.Database, o.Container ?? spec.Target.Container);
            return new CosmosTargetStore(container, o.PartitionKeyPath ?? spec.Target.PartitionKey, o.MaxConcurrency, o.MaxConcurrencyRetries,
                sp.GetService<ILogger<CosmosTargetStore>>());
        });
        services.TryAddSingleton<ITargetStore>(sp => sp.GetRequiredService<CosmosTargetStore>());
        services.TryAddSingleton<IReconcileTarget>(sp => sp.GetRequiredService<CosmosTargetStore>());
        return services;
    }

    /// <summary>
    /// Start-up step of a host using <see cref="AddRolloutCosmos"/>: creates the database and container when
    /// <see cref="RolloutCosmosOptions.CreateIfNotExists"/> is set, else checks that the container exists (a wrong name
    /// fails at start-up, not at the first write).
    /// </summary>
    /// <param name="services">The built service provider.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task InitializeRolloutCosmosAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.GetRequiredService<IOptions<RolloutCosmosOptions>>().Value;
        var store = services.GetRequiredService<CosmosTargetStore>();
        if (options.CreateIfNotExists)
        {
            await store.InitializeAsync(options.ContainerThroughput, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await store.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }
}
