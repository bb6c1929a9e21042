using System.CommandLine;
using Rollout.Cli.Commands;
using Spectre.Console;

namespace Rollout.Cli;

/// <summary>Exit codes of the rollout command.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Invalid = 1;
    public const int UsageOrIo = 2;
}

/// <summary>Builds the command tree and runs it; the entry point tests call in-process.</summary>
internal static class RolloutCli
{
    public static async Task<int> RunAsync(string[] args, IAnsiConsole console, TextWriter error, TimeSpan? processTerminationTimeout = null, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("Rollout: move a feature from a legacy SQL store to a new document store, safely.")
        {
            ValidateCommand.Create(console),
            PlanCommand.Create(console),
            DataPathCommands.Init(console),
            DataPathCommands.Seed(console),
            DataPathCommands.Backfill(console),
            DataPathCommands.Sync(console),
            DataPathCommands.DeadLetters(console),
            SqlServerScriptCommand.Create(console),
            ReconcileCommands.Reconcile(console),
            ReconcileCommands.Audit(console),
            BenchCommand.Create(console),
            RunCommands.Run(console),
            RunCommands.Status(console),
            RunCommands.Report(console),
        };
        foreach (var command in RunCommands.Operator(console))
        {
            root.Subcommands.Add(command);
        }

        var configuration = new InvocationConfiguration { Output = new AnsiConsoleTextWriter(console), Error = error, ProcessTerminationTimeout = processTerminationTimeout };
        return await root.Parse(args).InvokeAsync(configuration, cancellationToken);
    }
}

/// <summary>Routes System.CommandLine's own output (help, parse errors) through the same console as ours.</summary>
internal sealed class AnsiConsoleTextWriter(IAnsiConsole console) : TextWriter
{
    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public override void Write(char value) => console.Write(new Text(value.ToString()));

    public override void Write(string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            console.Write(new Text(value));
        }
    }

    public override void WriteLine(string? value) => Write(value + Environment.NewLine);
}
