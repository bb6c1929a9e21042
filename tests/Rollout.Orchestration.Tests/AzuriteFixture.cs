using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Rollout.Orchestration.Tests;

/// <summary>
/// Azurite (npm <c>azurite</c> 3.37.0), installed on first use under the user's cache folder and started on
/// free loopback ports for the tests of a class; stopped (then killed) when they are done.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public const string Version = "3.37.0";

    private Process? _process;

    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        var cli = await InstallAsync();
        int blob = FreePort(), queue = FreePort(), table = FreePort();
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            cli, "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", $"{blob}",
            "--queueHost", "127.0.0.1", "--queuePort", $"{queue}",
            "--tableHost", "127.0.0.1", "--tablePort", $"{table}",
        })
        {
            start.ArgumentList.Add(arg);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("Azurite did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        foreach (var port in new[] { blob, queue, table })
        {
            await WaitForPortAsync(port, TimeSpan.FromSeconds(30));
        }

        // Azurite's well-known development account (public, documented); no secret.
        const string account = "devstoreaccount1";
        const string key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};" +
            $"BlobEndpoint=http://127.0.0.1:{blob}/{account};QueueEndpoint=http://127.0.0.1:{queue}/{account};TableEndpoint=http://127.0.0.1:{table}/{account};";
    }

    public async Task DisposeAsync()
    {
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

    /// <summary>Installs Azurite once per machine (about 20 s) and returns its entry script.</summary>
    private static async Task<string> InstallAsync()
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rollout", $"azurite-{Version}");
        var cli = Path.Combine(root, "node_modules", "azurite", "dist", "src", "azurite.js");
        if (File.Exists(cli))
        {
            return cli;
        }

        Directory.CreateDirectory(root);
        var install = new ProcessStartInfo("npm")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "install", "--prefix", root, "--no-audit", "--no-fund", "--loglevel", "error", $"azurite@{Version}" })
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
            throw new InvalidOperationException("The durable-backend tests need Node.js and npm to install Azurite (apt install nodejs npm).", e);
        }

        using (npm)
        {
            var stderr = npm.StandardError.ReadToEndAsync();
            await npm.StandardOutput.ReadToEndAsync();
            await npm.WaitForExitAsync();
            if (npm.ExitCode != 0 || !File.Exists(cli))
            {
                throw new InvalidOperationException($"npm install azurite@{Version} failed (exit {npm.ExitCode}): {await stderr}");
            }
        }

        return cli;
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
