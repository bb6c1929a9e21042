using Rollout.Tests.Shared;

namespace Rollout.Orchestration.Tests;

/// <summary>
/// Azurite (npm <c>azurite</c> 3.37.0), installed on first use under the user's cache folder and started on
/// free loopback ports for the tests of a class; killed when they are done.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public const string Version = "3.37.0";

    private NodeServer? _server;

    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        var package = await NodeServer.InstallAsync("azurite", Version, Path.Combine("dist", "src", "azurite.js"), "The durable-backend tests");
        int blob = NodeServer.FreePort(), queue = NodeServer.FreePort(), table = NodeServer.FreePort();
        _server = await NodeServer.StartAsync(
            Path.Combine(package, "dist", "src", "azurite.js"),
            [
                "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
                "--blobHost", "127.0.0.1", "--blobPort", $"{blob}",
                "--queueHost", "127.0.0.1", "--queuePort", $"{queue}",
                "--tableHost", "127.0.0.1", "--tablePort", $"{table}",
            ],
            blob,
            queue,
            table);

        // Azurite's well-known development account (public, documented); no secret.
        const string account = "devstoreaccount1";
        const string key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};" +
            $"BlobEndpoint=http://127.0.0.1:{blob}/{account};QueueEndpoint=http://127.0.0.1:{queue}/{account};TableEndpoint=http://127.0.0.1:{table}/{account};";
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
