using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Sockets;
using DurableTask.AzureStorage;
using DurableTask.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing.Sidecar;
using Microsoft.DurableTask.Testing.Sidecar.Grpc;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Rollout.Orchestration.Hosting;

/// <summary>Where the Durable Task runtime keeps orchestration state outside Azure Functions.</summary>
public enum OrchestrationBackend
{
    /// <summary>In memory, in this process: nothing to install, gone when the process ends.</summary>
    InMemory,

    /// <summary>The Azure Storage backend (queues, tables, blobs), as Durable Functions uses in Azure; Azurite locally. Survives a restart.</summary>
    AzureStorage,
}

/// <summary>How the rollout orchestration is hosted outside Azure Functions (configuration section <c>Rollout:Orchestration</c>).</summary>
public sealed class RolloutOrchestrationOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Rollout:Orchestration";

    /// <summary>The backend. Default: in memory.</summary>
    public OrchestrationBackend Backend { get; set; } = OrchestrationBackend.InMemory;

    /// <summary>For <see cref="OrchestrationBackend.AzureStorage"/>: the storage connection string (Azurite's, locally). Never logged.</summary>
    public string? AzureStorageConnectionString { get; set; }

    /// <summary>Task hub name: 3 to 45 letters and digits, starting with a letter (Azure Storage names its queues and tables after it).</summary>
    [RegularExpression("^[A-Za-z][A-Za-z0-9]{2,44}$", ErrorMessage = "The task hub name must be 3 to 45 letters and digits and start with a letter, for example 'rollout'.")]
    public string TaskHub { get; set; } = "rollout";

    /// <summary>
    /// For <see cref="OrchestrationBackend.AzureStorage"/>: how long work held by a host that died stays locked before
    /// another host takes it over (partition lease and queue message visibility). Default 30 s; at least 5 s.
    /// </summary>
    public TimeSpan RecoveryTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Port of the local Durable Task sidecar on 127.0.0.1; 0 picks a free one.</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Backend == OrchestrationBackend.AzureStorage && string.IsNullOrWhiteSpace(AzureStorageConnectionString))
        {
            yield return new ValidationResult(
                "The AzureStorage backend needs a connection string: set Rollout:Orchestration:AzureStorageConnectionString (for Azurite, one with its blob, queue and table endpoints).",
                [nameof(AzureStorageConnectionString)]);
        }

        if (RecoveryTime < TimeSpan.FromSeconds(5) || RecoveryTime > TimeSpan.FromMinutes(10))
        {
            yield return new ValidationResult(
                $"RecoveryTime must be between 5 s and 10 min (it is {RecoveryTime}): shorter, a slow host loses its work to another; longer, a dead host's rollout waits that long.",
                [nameof(RecoveryTime)]);
        }
    }
}

/// <summary>Where the local Durable Task sidecar listens (gRPC, 127.0.0.1): other processes on this machine reach the rollout there.</summary>
/// <param name="Address">The http address, for example <c>http://127.0.0.1:38123</c>.</param>
public sealed record RolloutSidecarEndpoint(string Address);

/// <summary>Registration of the rollout orchestration on the Durable Task SDK worker.</summary>
public static class RolloutOrchestrationServiceCollectionExtensions
{
    /// <summary>
    /// Hosts a Durable Task sidecar on 127.0.0.1 over the chosen backend, and registers a worker with the rollout
    /// orchestrator and activities, a client, and <see cref="RolloutControl"/>. The activities resolve the ports
    /// of the core (exposure state, health window, reconciliation trigger, journal) from the container: register
    /// a storage (for example <c>AddRolloutSqlite</c>) too.
    /// </summary>
    /// <param name="services">Services.</param>
    /// <param name="configure">Options.</param>
    /// <exception cref="OptionsValidationException">The options are invalid.</exception>
    public static IServiceCollection AddRolloutOrchestration(this IServiceCollection services, Action<RolloutOrchestrationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new RolloutOrchestrationOptions();
        configure?.Invoke(options);
        var problems = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), problems, validateAllProperties: true))
        {
            throw new OptionsValidationException(RolloutOrchestrationOptions.Section, typeof(RolloutOrchestrationOptions), problems.Select(p => p.ErrorMessage ?? "invalid"));
        }

        var port = options.Port == 0 ? FreeLoopbackPort() : options.Port;
        var address = $"http://127.0.0.1:{port}";
        services.AddSingleton(Options.Create(options));
        services.AddSingleton(new RolloutSidecarEndpoint(address));
        services.AddSingleton(sp => new TaskHubSidecar(options, port, sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance));
        services.AddHostedService(sp => sp.GetRequiredService<TaskHubSidecar>());
        services.AddDurableTaskWorker(builder =>
        {
            builder.UseGrpc(address);
            builder.AddTasks(registry => registry.AddRolloutTasks());
            builder.UseVersioning(new DurableTaskWorkerOptions.VersioningOptions
            {
                Version = RolloutOrchestrator.OrchestrationVersion,
                DefaultVersion = RolloutOrchestrator.OrchestrationVersion,
                MatchStrategy = DurableTaskWorkerOptions.VersionMatchStrategy.CurrentOrOlder,
                FailureStrategy = DurableTaskWorkerOptions.VersionFailureStrategy.Reject,
            });
        });
        services.AddDurableTaskClient(builder =>
        {
            builder.UseGrpc(address);
            builder.RegisterDirectly();
        });
        services.TryAddSingleton(sp => new RolloutControl(sp.GetRequiredService<DurableTaskClient>()));
        return services;
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>The Durable Task sidecar (the SDK's gRPC task hub server) over the chosen backend, on 127.0.0.1.</summary>
internal sealed class TaskHubSidecar(RolloutOrchestrationOptions options, int port, ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public IOrchestrationService? Service { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var backend = await CreateServiceAsync(cancellationToken);
        var service = new StopOnceOrchestrationService(backend);
        Service = service;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<IOrchestrationService>(service);
        builder.Services.AddSingleton((IOrchestrationServiceClient)backend);
        builder.Services.AddSingleton<TaskHubGrpcServer>();
        _app = builder.Build();
        _app.MapGrpcService<TaskHubGrpcServer>();
        await _app.StartAsync(cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (_app is not null)
            {
                await _app.StopAsync(cancellationToken);
            }
        }
        finally
        {
            // Always, even when the server's stop throws (it does when the host's shutdown time is up): a backend
            // left running would keep renewing its partition leases, and no other host could take the rollouts
            // over for as long as this process lives. Forced when ours is the first stop; when the sidecar's own
            // (graceful) stop came first, this waits for that one (StopOnceOrchestrationService). Either way the
            // leases are released. A host that dies cannot do this; then RecoveryTime applies.
            if (Service is { } service)
            {
                Service = null;
                await service.StopAsync(isForced: true);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
            _app = null;
        }
    }

    private async Task<IOrchestrationService> CreateServiceAsync(CancellationToken cancellationToken)
    {
        if (options.Backend == OrchestrationBackend.InMemory)
        {
            return new InMemoryOrchestrationService(loggerFactory);
        }

        var service = new AzureStorageOrchestrationService(new AzureStorageOrchestrationServiceSettings
        {
            TaskHubName = options.TaskHub,
            StorageAccountClientProvider = new StorageAccountClientProvider(options.AzureStorageConnectionString!),
            LoggerFactory = loggerFactory,
            MaxQueuePollingInterval = TimeSpan.FromSeconds(1),
            LeaseInterval = options.RecoveryTime,
            LeaseRenewInterval = options.RecoveryTime / 3,
            LeaseAcquireInterval = options.RecoveryTime / 3,
            ControlQueueVisibilityTimeout = options.RecoveryTime,

            // An activity message taken by a host that then dies comes back after this time (the default is 5 min:
            // a rollout would wait that long). The sidecar does not renew activity locks, so an activity that runs
            // longer than RecoveryTime may be started again by another host: every rollout activity is idempotent.
            WorkItemQueueVisibilityTimeout = options.RecoveryTime,
        });
        cancellationToken.ThrowIfCancellationRequested();
        await service.CreateIfNotExistsAsync();
        return service;
    }
}

/// <summary>A client of a rollout hosted by another process on this machine (for <c>rollout status</c>, <c>approve</c>…).</summary>
public static class RemoteRolloutControl
{
    /// <summary>Connects to the sidecar at <paramref name="address"/>; dispose the provider when done.</summary>
    /// <param name="address">The sidecar's address.</param>
    public static (RolloutControl Control, ServiceProvider Services) Connect(string address)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddDurableTaskClient(builder =>
        {
            builder.UseGrpc(address);
            builder.RegisterDirectly();
        });
        var provider = services.BuildServiceProvider();
        return (new RolloutControl(provider.GetRequiredService<DurableTaskClient>()), provider);
    }
}

