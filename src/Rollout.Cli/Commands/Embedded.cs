using System.CommandLine;
using System.Globalization;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary>Shared arguments and set-up of the commands that work on the embedded default.</summary>
internal static class Embedded
{
    public static Argument<FileInfo> SpecArgument() => new("spec") { Description = "Path to a *.rollout.json file." };

    public static Option<DirectoryInfo?> DataOption() => new("--data")
    {
        Description = "Folder of the embedded stores (source.db, target.db, telemetry.db). Default: .rollout/<feature>.",
    };

    /// <summary>Loads the spec and opens its embedded stores, or prints why not and returns the exit code.</summary>
    public static (EmbeddedRollout? Rollout, int ExitCode) Open(FileInfo specFile, DirectoryInfo? data, TextWriter error)
    {
        var (spec, code) = SpecFile.LoadValid(specFile, error);
        if (spec is null)
        {
            return (null, code);
        }

        var folder = data?.FullName ?? Path.Combine(".rollout", spec.Feature);
        return OutputFolder.TryCreate(folder, "the data folder", "--data", error)
            ? (EmbeddedRollout.Open(folder, spec, TimeProvider.System), ExitCodes.Ok)
            : (null, ExitCodes.Invalid);
    }

    /// <summary>Runs work that needs the stores, turning store set-up errors into a message and exit code 1.</summary>
    public static async Task<int> RunAsync(FileInfo specFile, DirectoryInfo? data, TextWriter error, Func<EmbeddedRollout, Task<int>> work)
    {
        var (rollout, code) = Open(specFile, data, error);
        if (rollout is null)
        {
            return code;
        }

        await using (rollout)
        {
            try
            {
                return await work(rollout);
            }
            catch (InvalidOperationException ex)
            {
                error.WriteLine($"error: {ex.Message}");
                return ExitCodes.Invalid;
            }
            catch (Microsoft.Data.Sqlite.SqliteException ex) when (ex.SqliteErrorCode == 1)
            {
                error.WriteLine($"error: the embedded stores in {rollout.Folder} are not set up ({ex.Message}); run 'rollout init {specFile}' first");
                return ExitCodes.Invalid;
            }
        }
    }

    /// <summary>Shows progress: a live bar on a terminal, a line per step otherwise (CI, pipes).</summary>
    public static async Task<T> WithProgressAsync<T>(IAnsiConsole console, string title, Func<Action<double, string>, Task<T>> work)
    {
        if (console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi)
        {
            return await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask(title, maxValue: 100);
                    return await work((percent, text) =>
                    {
                        task.Value = Math.Min(100, percent);
                        task.Description = $"{title} {text}";
                    });
                });
        }

        return await PlainProgressAsync(line => console.WriteLine(line), title, work);
    }

    /// <summary>Shows progress as a line per tenth of the work (and one at the end) on the given writer.</summary>
    public static Task<T> PlainProgressAsync<T>(Action<string> writeLine, string title, Func<Action<double, string>, Task<T>> work) =>
        work(new PlainProgress(writeLine, title).Report);
}

/// <summary>Progress as lines: one per tenth of the work, and one when it is done.</summary>
internal sealed class PlainProgress(Action<string> writeLine, string title)
{
    private double _lastPrinted = -10;

    public void Report(double percent, string text)
    {
        if (percent - _lastPrinted >= 10 || percent >= 100 && _lastPrinted < 100)
        {
            _lastPrinted = percent;
            writeLine(string.Create(CultureInfo.InvariantCulture, $"{title}: {percent,5:0.0}% {text}"));
        }
    }
}
