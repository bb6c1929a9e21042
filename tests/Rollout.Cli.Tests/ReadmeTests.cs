using System.Text.RegularExpressions;
using Rollout.Orchestration;

namespace Rollout.Cli.Tests;

/// <summary>The README states figures the code decides; these keep the two in step.</summary>
public sealed class ReadmeTests
{
    [Fact]
    public void The_readme_names_the_number_of_history_entries_the_status_keeps()
    {
        var readme = Regex.Replace(Readme(), @"\s+", " ");

        Assert.Contains($"the last {RolloutOrchestrator.HistoryLimit} history entries", readme, StringComparison.Ordinal);
    }

    internal static string Readme()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Rollout.Functions.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        return File.ReadAllText(Path.Combine(directory.FullName, "README.md"));
    }
}
