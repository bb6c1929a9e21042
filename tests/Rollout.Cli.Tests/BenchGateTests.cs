namespace Rollout.Cli.Tests;

public sealed class BenchGateTests
{
    [Fact]
    public async Task Bench_gate_measures_every_method_against_its_plain_baseline()
    {
        var (code, output, error) = await CliRunner.RunAsync("bench", "gate", "--rows", "200", "--seconds", "0.2");

        Assert.True(code == 0, error);
        foreach (var method in new[] { "plain update (own transaction)", "gated write at 0 % exposure", "gated write at 100 % exposure", "plain point read", "gated read, legacy mode at 0 %", "gated read, shadow mode at 0 %", "gated read, live mode at 100 %" })
        {
            Assert.Contains(method, output, StringComparison.Ordinal);
        }

        Assert.Matches(@"gated write at 100 % exposure\s*│\s*[0-9,]+\s*│\s*[0-9]+\.[0-9]{2}x", output);
    }
}
