using Rollout.Cli;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Pipes and CI logs: no wrapping at 80 columns.
    AnsiConsole.Console.Profile.Width = 240;
}

return await RolloutCli.RunAsync(args, AnsiConsole.Console, Console.Error);
