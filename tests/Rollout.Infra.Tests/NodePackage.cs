using System.Diagnostics;

namespace Rollout.Infra.Tests;

/// <summary>
/// An npm package installed on first use under ~/.cache/rollout (like Azurite), and Node.js run next to it. Without
/// Node.js and npm the tests that use one fail, saying so (CI warns up front when npm is missing).
/// </summary>
internal sealed class NodePackage(string name, string version, string installedFile, string purpose)
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    /// <summary>The folder the package is installed into (its node_modules is below it).</summary>
    public string Root { get; } = Path.Combine(
        Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rollout", $"{name.TrimStart('@').Replace('/', '-')}-{version}");

    /// <summary>
    /// Installs the package unless <c>installedFile</c> (relative to its folder in node_modules) is already there, and
    /// writes <paramref name="files"/> (scripts that require it) into <see cref="Root"/>.
    /// </summary>
    public async Task InstallAsync(params (string Name, string Text)[] files)
    {
        await InstallLock.WaitAsync();
        try
        {
            if (!File.Exists(Path.Combine(Root, "node_modules", name, installedFile)))
            {
                Directory.CreateDirectory(Root);
                var (exitCode, _, stderr) = await RunAsync("npm", ["install", "--prefix", Root, "--no-audit", "--no-fund", "--loglevel", "error", $"{name}@{version}"]);
                exitCode.ShouldBe(0, $"npm install {name}@{version} failed: {stderr}");
            }

            foreach (var (file, text) in files)
            {
                await File.WriteAllTextAsync(Path.Combine(Root, file), text);
            }
        }
        finally
        {
            InstallLock.Release();
        }
    }

    /// <summary>Runs <paramref name="program"/> (node or npm) in the package's folder.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string program, string[] arguments, string? stdin = null)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = Root,
            RedirectStandardInput = stdin is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{purpose} needs Node.js and npm (apt install nodejs npm), as the durable-backend tests do.", e);
        }

        using (process)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), timeout.Token);
                process.StandardInput.Close();
            }

            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout, await stderr);
        }
    }
}
