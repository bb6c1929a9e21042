using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Azure.Cosmos;

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

    /// <summary>Test classes start their own servers in parallel; one npm install at a time.</summary>
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    private Process? _process;
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
            string package;
            await InstallLock.WaitAsync();
            try
            {
                package = await InstallAsync();
            }
            finally
            {
                InstallLock.Release();
            }

            var serverPort = FreePort();
            var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { Path.Combine(package, "lib", "cli.js"), "--port", $"{serverPort}", "--host", "127.0.0.1", "--no-ssl" })
            {
                start.ArgumentList.Add(arg);
            }

            _process = Process.Start(start) ?? throw new InvalidOperationException("cosmosdb-server did not start.");
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            await WaitForPortAsync(serverPort, TimeSpan.FromSeconds(30));
            using var certificate = X509Certificate2.CreateFromPemFile(Path.Combine(package, "cert.pem"), Path.Combine(package, "key.pem"));
            // Kestrel needs an exportable key on Linux; re-import the PEM pair as PKCS#12.
            var tls = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
            _proxy = await CosmosQueryProxy.StartAsync(FreePort(), new Uri($"http://127.0.0.1:{serverPort}/"), tls);
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

        if (_process is null)
        {
            return;
        }

        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(cts.Token);
            }
        }
        catch (InvalidOperationException)
        {
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <summary>Installs the server once per machine (about 12 s) and returns its package folder.</summary>
    private static async Task<string> InstallAsync()
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rollout", $"cosmosdb-server-{Version}");
        var package = Path.Combine(root, "node_modules", "@vercel", "cosmosdb-server");
        if (File.Exists(Path.Combine(package, "lib", "cli.js")))
        {
            return package;
        }

        Directory.CreateDirectory(root);
        var install = new ProcessStartInfo("npm") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "install", "--prefix", root, "--no-audit", "--no-fund", "--loglevel", "error", $"@vercel/cosmosdb-server@{Version}" })
        {
            install.ArgumentList.Add(arg);
        }

        Process npm;
        try
        {
            npm = Process.Start(install) ?? throw new InvalidOperationException("npm did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("The Cosmos tests need Node.js and npm to install @vercel/cosmosdb-server (apt install nodejs npm), or COSMOS_ENDPOINT set.", e);
        }

        using (npm)
        {
            var stderr = npm.StandardError.ReadToEndAsync();
            await npm.StandardOutput.ReadToEndAsync();
            await npm.WaitForExitAsync();
            if (npm.ExitCode != 0 || !File.Exists(Path.Combine(package, "lib", "cli.js")))
            {
                throw new InvalidOperationException($"npm install @vercel/cosmosdb-server@{Version} failed (exit {npm.ExitCode}): {await stderr}");
            }
        }

        return package;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForPortAsync(int port, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
