using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Rollout.Tests.Shared;

/// <summary>
/// A Node.js server the tests need (Azurite, cosmosdb-server): its npm package installed once per machine under
/// the user's cache folder, started on 127.0.0.1, and killed when the tests are done. Linked into the test
/// projects that use one.
/// </summary>
internal sealed class NodeServer : IAsyncDisposable
{
    // Test classes start their servers in parallel: one npm install at a time per process.
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    private readonly Process _process;

    private NodeServer(Process process) => _process = process;

    /// <summary>
    /// Installs <paramref name="package"/>@<paramref name="version"/> (unless <paramref name="probe"/>, a path
    /// inside the package, already exists) and returns the package's folder.
    /// </summary>
    /// <param name="package">npm package name.</param>
    /// <param name="version">Exact version.</param>
    /// <param name="probe">A file of the package, relative to its folder, that proves it installed.</param>
    /// <param name="needed">Who needs it, for the error when npm is missing.</param>
    public static async Task<string> InstallAsync(string package, string version, string probe, string needed)
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rollout", $"{package.TrimStart('@').Replace('/', '-')}-{version}");
        var folder = Path.Combine([root, "node_modules", .. package.Split('/')]);
        await InstallLock.WaitAsync();
        try
        {
            if (File.Exists(Path.Combine(folder, probe)))
            {
                return folder;
            }

            Directory.CreateDirectory(root);
            var (exit, stderr) = await RunAsync("npm", ["install", "--prefix", root, "--no-audit", "--no-fund", "--loglevel", "error", $"{package}@{version}"], needed);
            if (exit != 0 || !File.Exists(Path.Combine(folder, probe)))
            {
                throw new InvalidOperationException($"npm install {package}@{version} failed (exit {exit}): {stderr}");
            }

            return folder;
        }
        finally
        {
            InstallLock.Release();
        }
    }

    /// <summary>Starts <c>node <paramref name="script"/> …</c> and waits until every port in <paramref name="ports"/> accepts.</summary>
    /// <param name="script">The entry script.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="ports">Loopback ports it listens on.</param>
    public static async Task<NodeServer> StartAsync(string script, IEnumerable<string> arguments, params int[] ports)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"node {Path.GetFileName(script)} did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new NodeServer(process);
        try
        {
            foreach (var port in ports)
            {
                await WaitForPortAsync(port, TimeSpan.FromSeconds(30));
            }
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>A free port on 127.0.0.1.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kills the server (and its children) and waits up to 10 s for it to exit.</summary>
    public async ValueTask DisposeAsync()
    {
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

    private static async Task<(int Exit, string Stderr)> RunAsync(string file, IEnumerable<string> arguments, string needed)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{needed} need Node.js and npm (apt install nodejs npm).", e);
        }

        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            return (process.ExitCode, await stderr);
        }
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
