namespace Rollout.Cli.Tests;

public sealed class PlanCommandTests
{
    [Fact]
    public async Task Plan_prints_each_phase_with_exposure_bake_and_approval()
    {
        var (code, output, _) = await CliRunner.RunAsync("plan", CliRunner.Sample("orders.rollout.json"));

        Assert.Equal(0, code);
        var rows = output.Split('\n').Where(l => l.Contains('│', StringComparison.Ordinal)).ToArray();
        Assert.Contains(rows, r => r.Contains("shadow", StringComparison.Ordinal) && r.Contains("0%", StringComparison.Ordinal) && r.Contains("PT10M", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("canary", StringComparison.Ordinal) && r.Contains("1%", StringComparison.Ordinal) && r.Contains("wait PT4H, then rollback", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("ramp", StringComparison.Ordinal) && r.Contains("25%", StringComparison.Ordinal) && r.Contains("live", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("full", StringComparison.Ordinal) && r.Contains("100%", StringComparison.Ordinal));
        Assert.Contains("Budgets:", output, StringComparison.Ordinal);
        Assert.Contains("Longest possible duration", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plan_of_an_invalid_spec_points_to_validate()
    {
        var spec = CliRunner.TempSpec("""{ "feature": "UPPER" }""");

        var (code, _, error) = await CliRunner.RunAsync("plan", spec);

        Assert.Equal(1, code);
        Assert.Contains("rollout validate", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_the_commands()
    {
        var (code, output, _) = await CliRunner.RunAsync("--help");

        Assert.Equal(0, code);
        Assert.Contains("validate", output, StringComparison.Ordinal);
        Assert.Contains("plan", output, StringComparison.Ordinal);
    }
}
