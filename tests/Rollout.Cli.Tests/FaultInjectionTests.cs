using Rollout.Cli.Run;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;

namespace Rollout.Cli.Tests;

/// <summary>
/// `rollout run --inject` end to end: each fault breaks its budget, the rollout rolls back (exit 2), and the
/// rollback is prompt. Promptness is read from what the stores recorded (the breach verdict in the journal, the
/// exposure change to 0 in the state history), with a generous bound: this is not a benchmark.
/// </summary>
public sealed class FaultInjectionTests : IDisposable
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(15);

    private readonly RunFolder _run = new("rollout-run-faults", RunCommandTests.Spec.Replace(
        "{ \"name\": \"canary\", \"exposure\": 20, \"bake\": \"PT1M\", \"approval\": { \"timeout\": \"PT30M\", \"onTimeout\": \"rollback\" } }",
        "{ \"name\": \"canary\", \"exposure\": 20, \"bake\": \"PT20M\" }", StringComparison.Ordinal));

    public void Dispose() => _run.Dispose();

    [Theory]
    [InlineData("latency=+300ms@canary", "maxP95LatencyMs broken")]
    [InlineData("drift=0.05@canary", "maxDriftRate broken")]
    public async Task An_injected_fault_rolls_back_with_exit_2_promptly_after_the_breach_verdict(string injection, string budget)
    {
        var (code, output, error) = await CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data, "--rows", "500", "--speed", "60", "--rps", "300",
            "--approve", "auto", "--inject", injection);

        Assert.True(code == 2, $"exit {code}\n{output}\n{error}");
        var record = (await RunRecord.LoadAsync(_run.Data, default))!;
        Assert.Equal("rolledBack", record.Outcome);
        Assert.Contains(record.Reasons, r => r.Contains($"phase 'canary' at 20%: {budget}", StringComparison.Ordinal));
        Assert.True(record.StoresAgree, record.StoresCheck);

        await using var rollout = EmbeddedRollout.Open(_run.Data, RolloutSpecLoader.Load(File.ReadAllText(_run.Spec)).Spec!, TimeProvider.System);
        var journal = await rollout.Rollouts.ReadAsync("e2e-orders", default);
        var breach = journal.First(j => j.Kind == "verdict" && j.Phase == "canary" && j.Detail.Contains(": breach: ", StringComparison.Ordinal));
        var history = await rollout.Rollouts.ReadStateHistoryAsync("e2e-orders");
        var rolledBack = history.Single(c => c.Reason.StartsWith("rollback: ", StringComparison.Ordinal));
        Assert.Equal((0, ReadMode.Legacy), (rolledBack.State.Exposure.Buckets, rolledBack.State.Reads));
        var took = rolledBack.At - breach.At;
        Assert.True(took >= TimeSpan.Zero && took < Prompt, $"exposure 0 came {took.TotalSeconds:0.0} s after the breach verdict ({breach.At:O} -> {rolledBack.At:O})\n{output}");
    }
}
