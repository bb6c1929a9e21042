using System.Text.RegularExpressions;

namespace Rollout.Cli.Tests;

public sealed class BenchReconcileTests
{
    [Fact]
    public async Task Bench_reconcile_measures_every_method_in_a_process_of_its_own_and_each_finds_exactly_the_injected_drift()
    {
        var (code, output, error) = await CliRunner.RunAsync("bench", "reconcile", "--rows", "2000", "--drift", "1,10");

        Assert.True(code == 0, error + output);
        foreach (var (level, drifted) in new[] { ("1%", 20), ("10%", 200) })
        {
            foreach (var method in new[] { "naive full compare", "quick", "quick --no-buckets", "deep" })
            {
                // drift | method | time | vs naive | vs floor | rows read one by one | drift found | peak working set
                var row = Regex.Match(output, $@"│\s*{Regex.Escape(level)}\s*│\s*{Regex.Escape(method)}\s*│\s*(?<time>[0-9.]+) s\s*│[^│]*│[^│]*│\s*(?<read>[0-9,]+)\s*│\s*(?<found>[0-9,]+)\s*│\s*(?<mb>[0-9]+) MB");
                Assert.True(row.Success, $"no row for {method} at {level}:{Environment.NewLine}{output}");
                Assert.Equal(drifted, int.Parse(row.Groups["found"].Value, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture));
                // Measured in a child process: a working set of its own, neither zero nor this test host's.
                Assert.InRange(int.Parse(row.Groups["mb"].Value, System.Globalization.CultureInfo.InvariantCulture), 10, 2000);
            }
        }

        Assert.Contains("floor (keys only)", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_reconcile_step_refuses_an_unknown_method()
    {
        var (code, _, error) = await CliRunner.RunAsync("bench", "reconcile-step", "--data", Path.GetTempPath(), "--method", "fast");

        Assert.NotEqual(0, code);
        Assert.Contains("fast", error, StringComparison.Ordinal);
    }
}
