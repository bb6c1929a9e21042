using System.Text.Json.Nodes;

namespace Rollout.Infra.Tests;

/// <summary>
/// Compiles and lints every Bicep file of infra/ once per test run (bicep build, build-params and lint over
/// glob patterns: four CLI runs, a few seconds each) and holds the ARM JSON for the assertions.
/// </summary>
public sealed class InfraFixture : IAsyncLifetime
{
    private readonly string _outputDirectory = Path.Combine(Path.GetTempPath(), "rollout-infra-tests-" + Guid.NewGuid().ToString("N"));

    public IReadOnlyList<string> BicepFiles { get; } = Files("*.bicep");

    public IReadOnlyList<string> ParameterFiles { get; } = Files("*.bicepparam");

    public (int ExitCode, string Output) Build { get; private set; }

    public (int ExitCode, string Output) BuildParams { get; private set; }

    public (int ExitCode, string Output) LintTemplates { get; private set; }

    public (int ExitCode, string Output) LintParams { get; private set; }

    /// <summary>The compiled ARM JSON of each .bicep file, by its path relative to infra/ (e.g. modules/storage.bicep).</summary>
    public Dictionary<string, JsonObject> Templates { get; } = [];

    /// <summary>The parameters of each .bicepparam file, by its path relative to infra/.</summary>
    public Dictionary<string, JsonObject> Parameters { get; } = [];

    public ArmTemplate Main => new(Templates["main.bicep"]);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_outputDirectory);
        var infra = Bicep.InfraDirectory;
        var build = Bicep.RunAsync(infra, "build", "--pattern", "**/*.bicep", "--outdir", _outputDirectory);
        var lintTemplates = Bicep.RunAsync(infra, "lint", "--pattern", "**/*.bicep");
        (Build, LintTemplates) = (await build, await lintTemplates);
        var buildParams = Bicep.RunAsync(Bicep.DeployEnvironment, infra, "build-params", "--pattern", "*.bicepparam", "--outdir", _outputDirectory);
        var lintParams = Bicep.RunAsync(Bicep.DeployEnvironment, infra, "lint", "--pattern", "*.bicepparam");
        (BuildParams, LintParams) = (await buildParams, await lintParams);

        foreach (var file in BicepFiles)
        {
            var json = Path.Combine(_outputDirectory, Path.ChangeExtension(file, ".json"));
            if (File.Exists(json))
            {
                Templates[file] = (JsonObject)JsonNode.Parse(await File.ReadAllTextAsync(json))!;
            }
        }

        foreach (var file in ParameterFiles)
        {
            var json = Path.Combine(_outputDirectory, Path.ChangeExtension(file, ".json"));
            if (File.Exists(json))
            {
                Parameters[file] = (JsonObject)JsonNode.Parse(await File.ReadAllTextAsync(json))!["parameters"]!;
            }
        }
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_outputDirectory, recursive: true);
        return Task.CompletedTask;
    }

    private static string[] Files(string pattern) =>
        [.. Directory.GetFiles(Bicep.InfraDirectory, pattern, SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(Bicep.InfraDirectory, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)];
}

[CollectionDefinition(Name)]
public sealed class InfraCollection : ICollectionFixture<InfraFixture>
{
    public const string Name = "infra";
}
