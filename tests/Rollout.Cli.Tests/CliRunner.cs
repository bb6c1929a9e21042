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

    public static string Sample(string name) => Path.Combine(AppContext.BaseDirectory, "samples", name);

    public static string TempSpec(string json)
    {
        var path = Path.Combine(Path.GetTempPath(), $"rollout-cli-{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}.rollout.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static int _counter;
}
