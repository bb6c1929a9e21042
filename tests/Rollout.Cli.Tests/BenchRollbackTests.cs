namespace Rollout.Cli.Tests;

public sealed class BenchRollbackTests
{
    [Fact]
    public async Task Bench_rollback_runs_a_real_rollout_into_a_fault_and_reports_the_breach_that_rolled_it_back()
    {
        var (code, output, error) = await CliRunner.RunAsync("bench", "rollback", "--trials", "1", "--interval-seconds", "0.5", "--rps", "1000");

        Assert.True(code == 0, error);
        Assert.Contains("maxErrorRateIncrease broken", output, StringComparison.Ordinal);
        Assert.Contains("health interval 0.5 s, 1000 requests/s per path: median", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_rollback_refuses_settings_it_cannot_measure_with()
    {
        var (code, _, error) = await CliRunner.RunAsync("bench", "rollback", "--trials", "0");

        Assert.Equal(2, code);
        Assert.Contains("--trials >= 1", error, StringComparison.Ordinal);
        var thin = await CliRunner.RunAsync("bench", "rollback", "--interval-seconds", "0.2", "--rps", "400");
        Assert.Equal(2, thin.ExitCode);
        Assert.Contains("too little traffic to judge health", thin.Error, StringComparison.Ordinal);
    }
}
