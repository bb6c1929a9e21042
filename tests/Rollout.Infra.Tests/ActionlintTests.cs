namespace Rollout.Infra.Tests;

public sealed class ActionlintTests
{
    [Fact]
    public async Task Actionlint_finds_no_problem_in_the_workflows()
    {
        var files = Directory.GetFiles(Path.Combine(Bicep.RepositoryRoot, ".github", "workflows"), "*.yml");
        var problems = await Actionlint.LintAsync(files);
        problems.ShouldBeEmpty(string.Join('\n', problems));
    }

    [Fact]
    public async Task Actionlint_reports_a_broken_workflow_so_a_clean_run_means_something()
    {
        var file = Path.Combine(Path.GetTempPath(), $"rollout-broken-{Guid.NewGuid():N}.yml");
        await File.WriteAllTextAsync(file, """
            on: push
            jobs:
              build:
                runs-on: ubuntu-latest
                steps:
                  - run: echo "${{ steps.missing.outputs.value }}"
                  - uses: actions/checkout@v4
                    run: echo both
            """);
        try
        {
            var problems = await Actionlint.LintAsync(file);
            problems.Count.ShouldBeGreaterThanOrEqualTo(2, string.Join('\n', problems));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
