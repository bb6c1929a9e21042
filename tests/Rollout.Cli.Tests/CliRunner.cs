using Spectre.Console;

namespace Rollout.Cli.Tests;

/// <summary>Runs the rollout command in-process with captured output.</summary>
internal static class CliRunner
{
    public static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args) => RunAsync(CancellationToken.None, args);

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 200;
        var code = await RolloutCli.RunAsync(args, console, error, cancellationToken: cancellationToken);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Runs the built rollout command as a process in a working directory (for what resolves paths from it).</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunProcessAsync(string workingDirectory, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rollout.dll"));
        foreach (var argument in args)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await output, await error);
    }

    public static string Sample(string name) => Path.Combine(AppContext.BaseDirectory, "samples", name);

    public static string TempSpec(string json)
    {
        var path = Path.Combine(Path.GetTempPath(), $"rollout-cli-{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}.rollout.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static int _counter;
}
