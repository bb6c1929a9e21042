using System.Security.Cryptography.X509Certificates;
using Microsoft.Azure.Cosmos;
using Rollout.Tests.Shared;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// A Cosmos-protocol endpoint for the tests of a class. Two kinds: <see cref="LocalCosmosServer"/> (always) and
/// <see cref="ConfiguredCosmosEndpoint"/> (where <c>COSMOS_ENDPOINT</c> is set). Each Cosmos test class is abstract over this
/// fixture and has one concrete class per kind, so the suite runs on the local server everywhere and again on the configured
/// endpoint where there is one.
/// </summary>
public abstract class CosmosServerFixture : IAsyncLifetime
{
    /// <summary>The Cosmos DB emulator's well-known key (public, documented); the local server does not check it.</summary>
    protected const string EmulatorKey = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nsuiMY4B/ht3vdbd2vJ6Sar5Tb4f9/W1Lz8UABkQ==";

    private CosmosClient? _client;
    private int _containers;
    private readonly List<Container> _created = [];

    public CosmosClient Client => _client ?? throw new InvalidOperationException($"{GetType().Name} has no endpoint (its tests are skipped).");

    /// <summary>True on the local server (no bulk), false on a configured endpoint.</summary>
    public abstract bool IsLocalServer { get; }

    /// <summary>A database of this fixture's own (test classes run in parallel, each with a fixture).</summary>
    public string Database { get; } = $"rollout-tests-{Guid.NewGuid():N}"[..22];

    /// <summary>Starts what the endpoint needs and returns the client options, or null when there is no endpoint.</summary>
    protected abstract Task<RolloutCosmosOptions?> StartAsync();

    public async Task InitializeAsync()
    {
        var options = await StartAsync();
        if (options is null)
        {
            return;
        }

        options.Database = Database;
        _client = CosmosClientFactory.Create(options, c => c.RequestTimeout = TimeSpan.FromSeconds(30));
    }

    /// <summary>A store on a new, empty container of its own.</summary>
    public async Task<CosmosTargetStore> NewStoreAsync(string partitionKeyPath = "/customerId")
    {
        var name = $"c{Interlocked.Increment(ref _containers)}-{Guid.NewGuid():N}"[..30];
        var store = new CosmosTargetStore(Client.GetContainer(Database, name), partitionKeyPath, maxConcurrency: 8);
        await store.InitializeAsync();
        lock (_created)
        {
            _created.Add(store.Container);
        }

        return store;
    }

    /// <summary>
    /// Deletes the containers made so far; test classes call it after each test (tests of a class run one after the other),
    /// so that an emulator never holds more than a few containers.
    /// </summary>
    public async Task DropContainersAsync()
    {
        Container[] created;
        lock (_created)
        {
            created = [.. _created];
            _created.Clear();
        }

        foreach (var container in created)
        {
            using var response = await container.DeleteContainerStreamAsync();
        }
    }

    public async Task DisposeAsync()
    {
        if (_client is not null && !IsLocalServer)
        {
            using var deleted = await _client.GetDatabase(Database).DeleteStreamAsync();
        }

        _client?.Dispose();
        await StopAsync();
    }

    /// <summary>Stops what <see cref="StartAsync"/> started.</summary>
    protected virtual Task StopAsync() => Task.CompletedTask;
}

/// <summary>
/// The npm package <c>@vercel/cosmosdb-server</c> 1.0.1, installed on first use under the user's cache folder, started on a
/// free loopback port (plain HTTP), behind <see cref="CosmosQueryProxy"/> (HTTPS on another free loopback port); bulk
/// execution off, since that server cannot do it. The server is killed when the tests are done.
/// </summary>
public sealed class LocalCosmosServer : CosmosServerFixture
{
    public const string Version = "1.0.1";

    private NodeServer? _server;
    private CosmosQueryProxy? _proxy;

    public override bool IsLocalServer => true;

    /// <summary>The proxy in front of the server (tests can see what the SDK sent through it).</summary>
    internal CosmosQueryProxy Proxy => _proxy ?? throw new InvalidOperationException("The server is not started.");

    protected override async Task<RolloutCosmosOptions?> StartAsync()
    {
        var package = await NodeServer.InstallAsync("@vercel/cosmosdb-server", Version, Path.Combine("lib", "cli.js"), "The Cosmos tests");
        var serverPort = NodeServer.FreePort();
        _server = await NodeServer.StartAsync(Path.Combine(package, "lib", "cli.js"), ["--port", $"{serverPort}", "--host", "127.0.0.1", "--no-ssl"], serverPort);
        using var certificate = X509Certificate2.CreateFromPemFile(Path.Combine(package, "cert.pem"), Path.Combine(package, "key.pem"));
        // Kestrel needs an exportable key on Linux; re-import the PEM pair as PKCS#12.
        var tls = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        _proxy = await CosmosQueryProxy.StartAsync(NodeServer.FreePort(), new Uri($"http://127.0.0.1:{serverPort}/"), tls);
        return new RolloutCosmosOptions
        {
            Endpoint = _proxy.Endpoint,
            Key = EmulatorKey,
            AllowBulkExecution = false,
            AcceptLocalEmulatorCertificate = true,
        };
    }

    protected override async Task StopAsync()
    {
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>
/// The Azure Cosmos DB emulator or an account at <c>COSMOS_ENDPOINT</c> (key in <c>COSMOS_KEY</c>, else the emulator's
/// well-known key; a loopback endpoint's certificate is accepted), with bulk execution on. Without the variable it starts
/// nothing, and the classes that use it are skipped (<see cref="RequiresEnvironmentAttribute"/>).
/// </summary>
public sealed class ConfiguredCosmosEndpoint : CosmosServerFixture
{
    public const string Variable = "COSMOS_ENDPOINT";

    public const string SkipReason =
        "COSMOS_ENDPOINT is not set: this class runs the Cosmos tests again on the Azure Cosmos DB emulator or an account, with bulk on " +
        "(set COSMOS_ENDPOINT and COSMOS_KEY); the same tests run on the local Cosmos-compatible server in the matching …OnLocalServer class.";

    public override bool IsLocalServer => false;

    protected override Task<RolloutCosmosOptions?> StartAsync()
    {
        var configured = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(configured))
        {
            return Task.FromResult<RolloutCosmosOptions?>(null);
        }

        var endpoint = new Uri(configured);
        return Task.FromResult<RolloutCosmosOptions?>(new RolloutCosmosOptions
        {
            Endpoint = endpoint,
            Key = Environment.GetEnvironmentVariable("COSMOS_KEY") is { Length: > 0 } key ? key : EmulatorKey,
            AllowBulkExecution = true,
            AcceptLocalEmulatorCertificate = RolloutCosmosOptions.IsLoopback(endpoint),
        });
    }
}
