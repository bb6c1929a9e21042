using System.Security.Cryptography.X509Certificates;
using Microsoft.Azure.Cosmos;
using Rollout.Tests.Shared;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// A Cosmos-protocol endpoint for the tests of a class. When <c>COSMOS_ENDPOINT</c> (and <c>COSMOS_KEY</c>) are set, a real
/// Azure Cosmos DB emulator or account, with bulk execution on. Otherwise the npm package <c>@vercel/cosmosdb-server</c>
/// 1.0.1, installed on first use under the user's cache folder, started on a free loopback port (plain HTTP), behind
/// <see cref="CosmosQueryProxy"/> (HTTPS on another free loopback port); bulk execution off, since that server cannot do it.
/// The server is killed when the tests are done.
/// </summary>
public sealed class CosmosServerFixture : IAsyncLifetime
{
    public const string Version = "1.0.1";

    /// <summary>The Cosmos DB emulator's well-known key (public, documented); the local server does not check it.</summary>
    private const string EmulatorKey = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nsuiMY4B/ht3vdbd2vJ6Sar5Tb4f9/W1Lz8UABkQ==";

    private NodeServer? _server;
    private CosmosQueryProxy? _proxy;
    private int _containers;
    private readonly List<Container> _created = [];

    public CosmosClient Client { get; private set; } = null!;

    /// <summary>True on the local server (no bulk), false on a configured endpoint.</summary>
    public bool IsLocalServer { get; private set; }

    /// <summary>A database of this fixture's own (test classes run in parallel, each with a fixture).</summary>
    public string Database { get; } = $"rollout-tests-{Guid.NewGuid():N}"[..22];

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable("COSMOS_ENDPOINT");
        RolloutCosmosOptions options;
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var endpoint = new Uri(configured);
            options = new RolloutCosmosOptions
            {
                Endpoint = endpoint,
                Key = Environment.GetEnvironmentVariable("COSMOS_KEY") is { Length: > 0 } key ? key : EmulatorKey,
                AllowBulkExecution = true,
                AcceptLocalEmulatorCertificate = RolloutCosmosOptions.IsLoopback(endpoint),
            };
        }
        else
        {
            IsLocalServer = true;
            var package = await NodeServer.InstallAsync("@vercel/cosmosdb-server", Version, Path.Combine("lib", "cli.js"), "The Cosmos tests (or COSMOS_ENDPOINT set)");
            var serverPort = NodeServer.FreePort();
            _server = await NodeServer.StartAsync(Path.Combine(package, "lib", "cli.js"), ["--port", $"{serverPort}", "--host", "127.0.0.1", "--no-ssl"], serverPort);
            using var certificate = X509Certificate2.CreateFromPemFile(Path.Combine(package, "cert.pem"), Path.Combine(package, "key.pem"));
            // Kestrel needs an exportable key on Linux; re-import the PEM pair as PKCS#12.
            var tls = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
            _proxy = await CosmosQueryProxy.StartAsync(NodeServer.FreePort(), new Uri($"http://127.0.0.1:{serverPort}/"), tls);
            options = new RolloutCosmosOptions
            {
                Endpoint = _proxy.Endpoint,
                Key = EmulatorKey,
                AllowBulkExecution = false,
                AcceptLocalEmulatorCertificate = true,
            };
        }

        options.Database = Database;
        Client = CosmosClientFactory.Create(options, c => c.RequestTimeout = TimeSpan.FromSeconds(30));
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
        if (Client is not null && !IsLocalServer)
        {
            using var deleted = await Client.GetDatabase(Database).DeleteStreamAsync();
        }

        Client?.Dispose();
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
