using System.Diagnostics;
using System.Reflection;

namespace Rollout.Infra.Tests;

/// <summary>The Bicep CLI from the NuGet package, and the repository the tests read.</summary>
internal static class Bicep
{
    public static string RepositoryRoot { get; } = Metadata("RepositoryRoot");

    public static string InfraDirectory { get; } = Path.Combine(RepositoryRoot, "infra");

    public static string Executable { get; } = FindExecutable();

    /// <summary>Runs the CLI in <paramref name="workingDirectory"/>; output is stdout and stderr together (diagnostics go to stderr).</summary>
    public static Task<(int ExitCode, string Output)> RunAsync(string workingDirectory, params string[] arguments) =>
        RunAsync(new Dictionary<string, string?>(), workingDirectory, arguments);

    /// <summary>Runs the CLI with <paramref name="environment"/> set (a null value removes the variable).</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(IReadOnlyDictionary<string, string?> environment, string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(Executable)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // No update check, no telemetry: the CLI runs offline.
        start.Environment["BICEP_TELEMETRY_ENABLED"] = "false";
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {Executable}.");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await stdout) + (await stderr));
    }

    /// <summary>
    /// The variables the parameter files read as the deploy workflow sets them from a GitHub environment (example ids):
    /// the SQL administrator's object id has no default, so that a deployment without it fails instead of naming no one.
    /// </summary>
    public static IReadOnlyDictionary<string, string?> DeployEnvironment { get; } = new Dictionary<string, string?>
    {
        ["SQL_ENTRA_ADMIN_LOGIN"] = "rollout-sql-admins",
        ["SQL_ENTRA_ADMIN_OBJECT_ID"] = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b",
    };

    private static string Metadata(string key) =>
        typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().SingleOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"Assembly metadata '{key}' is missing (set in Rollout.Infra.Tests.csproj).");

    private static string FindExecutable()
    {
        // $(BicepPath) is written with a Windows separator by the package's props.
        var path = Path.GetFullPath(Metadata("BicepPath").Replace('\\', '/'));
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The Bicep CLI is not at {path}: restore the Azure.Bicep.CommandLine.linux-x64 package.", path);
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) == 0)
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }

        return path;
    }
}
