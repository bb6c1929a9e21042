using Rollout.Cli;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Pipes and CI logs: no wrapping at 80 columns.
    AnsiConsole.Console.Profile.Width = 240;
}

// Ctrl+C or SIGTERM cancels the command (rollout run then rolls back before exiting); a run gets 90 s to do so.
return await RolloutCli.RunAsync(args, AnsiConsole.Console, Console.Error, processTerminationTimeout: TimeSpan.FromSeconds(90));
