using System.Diagnostics;

namespace Rollout.Cli.Tests;

/// <summary>
/// Headless Chromium (Debian's <c>chromium</c>): found on PATH, or installed with apt-get when the tests run as
/// root on a machine without it (as on a fresh CI machine).
/// </summary>
public sealed class ChromiumFixture : IAsyncLifetime
{
    public string Executable { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        Executable = Find() ?? string.Empty;
        if (Executable.Length > 0)
        {
            return;
        }

        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException("The report test needs Chromium: install it with 'sudo apt-get install -y chromium' (the tests install it themselves only when they run as root).");
        }

        if (await AptAsync("install", "-y", "--no-install-recommends", "chromium") != 0)
        {
            await AptAsync("update");
            var code = await AptAsync("install", "-y", "--no-install-recommends", "chromium");
            if (code != 0)
            {
                throw new InvalidOperationException($"apt-get install chromium failed (exit {code}).");
            }
        }

        Executable = Find() ?? throw new InvalidOperationException("Chromium was installed but is not on PATH.");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Runs Chromium headless on a file and returns its standard output.</summary>
    public async Task<string> RunAsync(params string[] arguments)
    {
        var profile = Path.Combine(Path.GetTempPath(), "rollout-chromium-" + Guid.NewGuid().ToString("N"));
        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", $"--user-data-dir={profile}" }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("Chromium did not finish within 60 s: " + await stderr);
        }
        finally
        {
            try
            {
                Directory.Delete(profile, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        return await stdout;
    }

    private static string? Find() =>
        new[] { "chromium", "chromium-browser", "google-chrome" }
            .SelectMany(name => (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Select(dir => Path.Combine(dir, name)))
            .FirstOrDefault(File.Exists);

    private static async Task<int> AptAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("apt-get") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var drain = Task.WhenAll(process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        await process.WaitForExitAsync();
        await drain;
        return process.ExitCode;
    }
}
