using System.Text.Json;
using System.Text.RegularExpressions;
using Rollout.Cli.Run;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;

namespace Rollout.Cli.Tests;

/// <summary>
/// End to end: `rollout run` on real SQLite files in a temp folder, the real Durable Task SDK worker, the real
/// feed, reconciliation and gate. Asserts on the stores, the audit trail, the journal and the exit code.
/// </summary>
public sealed partial class RunCommandTests : IDisposable
{
    internal const string Spec = """
        {
          "feature": "e2e-orders",
          "source": { "table": "Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": {
            "id": { "from": "OrderId", "convert": "string" },
            "customerId": { "from": "CustomerId", "convert": "string" },
            "status": { "from": "Status", "convert": "lower" },
            "total": { "from": "TotalCents", "convert": "centsToDecimal" },
            "shipping.city": "ShipCity"
          },
          "phases": [
            { "name": "shadow", "exposure": 0, "reads": "shadow", "bake": "PT1M" },
            { "name": "canary", "exposure": 20, "bake": "PT1M", "approval": { "timeout": "PT30M", "onTimeout": "rollback" } },
            { "name": "full", "exposure": 100, "bake": "PT1M" }
          ],
          "budgets": { "evaluateEvery": "PT12S", "minSamples": 500 },
          "reconciliation": { "every": "PT1M", "repair": "auto", "maxRowsPerSecond": 5000 }
        }
        """;

    private readonly RunFolder _run = new("rollout-run-tests", Spec);

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task A_healthy_run_completes_with_exit_0_and_leaves_the_target_equal_to_the_translated_source()
    {
        var (code, output, error) = await CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data, "--rows", "2000", "--speed", "60", "--rps", "300", "--approve", "auto");

        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
        Assert.Contains("completed after", output, StringComparison.Ordinal);
        Assert.Contains($"report: {Path.Combine(_run.Data, "report.html")}", output, StringComparison.Ordinal);

        // Plain output (not a terminal) carries the live display's figures too: a line at each phase, every few seconds between.
        var figures = FiguresLine().Matches(output).Select(m => m.Groups["phase"].Value).ToArray();
        Assert.True(new[] { "shadow", "canary", "full" }.All(figures.Contains), $"figures lines for phases {string.Join(", ", figures)}\n{output}");
        Assert.Contains("final reconciliation: 100.0% 2,000/2,000 keys, 0 drifted, 0 repaired", output, StringComparison.Ordinal);
        Assert.Contains("deep check: 100.0% 2,000/2,000 keys, 0 drifted", output, StringComparison.Ordinal);
        var record = (await RunRecord.LoadAsync(_run.Data, default))!;
        Assert.Equal("completed", record.Outcome);
        Assert.Equal(["shadow", "canary", "full"], record.Journal.Where(j => j.Kind == "phase").Select(j => j.Phase).ToArray());
        Assert.Contains(record.Journal, j => j.Kind == "approval" && j.Detail.StartsWith("approved by rollout run (--approve auto) on snapshot", StringComparison.Ordinal));
        Assert.True(record.Writes > 100 && record.Reads > 100, $"{record.Reads} reads, {record.Writes} writes");
        Assert.True(record.Timeline.Count > 4);

        // Independently of what the run said: the target holds exactly the translated source, and the audit trail has the runs.
        var (drifted, compared, runs) = await CheckStoresAsync();
        Assert.Equal((0L, 2000L), (drifted, compared));
        Assert.True(runs >= 2, $"{runs} reconciliation runs audited");
    }

    [Fact]
    public async Task A_run_with_an_injected_breach_rolls_back_with_exit_2_and_the_stores_still_agree_and_json_output_is_one_document()
    {
        var (code, output, error) = await CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data, "--rows", "2000", "--speed", "60", "--rps", "300",
            "--approve", "auto", "--inject", "error-rate=0.6@phase:canary", "--json");

        Assert.True(code == 2, $"exit {code}\n{output}\n{error}");
        // With --json, stdout is one JSON document and nothing else; progress and history go to stderr.
        using (var outcome = JsonDocument.Parse(output))
        {
            Assert.Equal("rolledBack", outcome.RootElement.GetProperty("outcome").GetString());
            Assert.Equal(Path.Combine(_run.Data, "report.html"), outcome.RootElement.GetProperty("report").GetString());
            Assert.True(outcome.RootElement.GetProperty("storesAgree").GetBoolean());
        }

        Assert.Contains("seed: 100.0% ", error, StringComparison.Ordinal);
        Assert.Contains("backfill: 100.0% ", error, StringComparison.Ordinal);
        Assert.Contains("rollback ", error, StringComparison.Ordinal);
        // The reconciliations the run waits for show their progress (here as lines on stderr).
        Assert.Contains("reconciliation after rollback: 100.0% 2,000/2,000 keys", error, StringComparison.Ordinal);
        Assert.Contains("final reconciliation: 100.0% 2,000/2,000 keys", error, StringComparison.Ordinal);
        Assert.Contains("deep check: 100.0% 2,000/2,000 keys, 0 drifted", error, StringComparison.Ordinal);
        var record = (await RunRecord.LoadAsync(_run.Data, default))!;
        var reason = Assert.Single(record.Reasons);
        Assert.Contains("phase 'canary' at 20%: maxErrorRateIncrease broken", reason, StringComparison.Ordinal);
        Assert.True(record.FellBack > 0);
        Assert.Contains(record.Journal, j => j.Kind == "rollback" && j.ExposurePercent == 0);
        Assert.Contains(record.Journal, j => j.Kind == "reconcile" && j.Detail.StartsWith("reconciliation run ", StringComparison.Ordinal));

        await using var rollout = Open();
        var state = await rollout.Rollouts.GetStateAsync("e2e-orders", default);
        Assert.Equal((0, ReadMode.Legacy), (state.Exposure.Buckets, state.Reads));
        var (drifted, compared, _) = await CheckStoresAsync();
        Assert.Equal((0L, 2000L), (drifted, compared));

        // `rollout report --json`: the run's record as one JSON document (its long journal lines unwrapped).
        var report = await CliRunner.RunAsync("report", "e2e-orders", "--data", _run.Data, "--json");
        Assert.True(report.ExitCode == 0, report.Error);
        using var json = JsonDocument.Parse(report.Output);
        var root = json.RootElement;
        Assert.Equal(("e2e-orders", "rolledBack", 2000L), (root.GetProperty("feature").GetString(), root.GetProperty("outcome").GetString(), root.GetProperty("sourceRows").GetInt64()));
        Assert.Contains("maxErrorRateIncrease broken", root.GetProperty("reasons")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains(root.GetProperty("journal").EnumerateArray(), j => j.GetProperty("kind").GetString() == "rollback" && j.GetProperty("exposurePercent").GetDecimal() == 0);
        Assert.Contains(root.GetProperty("timeline").EnumerateArray(), t => t.GetProperty("phase").GetString() == "canary" && t.GetProperty("newRps").GetDouble() > 0);
        Assert.Contains(root.GetProperty("reconciliations").EnumerateArray(), r => r.GetProperty("depth").GetString() == "deep" && r.GetProperty("compared").GetInt64() == 2000);
        Assert.Equal((record.Writes, record.FellBack, true), (root.GetProperty("writes").GetInt64(), root.GetProperty("fellBack").GetInt64(), root.GetProperty("storesAgree").GetBoolean()));
    }

    [Theory]
    [InlineData(600, 2)] // the README's demo: 2 h 40 min of bakes in 16 s
    [InlineData(20, 24)]
    [InlineData(1, 60)] // a real-time rehearsal: a line a minute
    public void Plain_output_prints_the_figures_about_20_times_over_the_plan_2_s_to_a_minute_apart(double speed, double seconds)
    {
        var spec = RolloutSpecLoader.Load(File.ReadAllText(CliRunner.Sample("orders.rollout.json"))).Spec!;

        Assert.Equal(TimeSpan.FromSeconds(seconds), RunSession.FiguresInterval(spec, speed));
    }

    [Theory]
    [InlineData("--inject", "error-rate=2@canary", "error-rate must be a share between 0 (exclusive) and 1")]
    [InlineData("--inject", "latency=300@canary", "latency must be added milliseconds or seconds")]
    [InlineData("--inject", "drift=0.1@nowhere", "the spec has no phase 'nowhere' (its phases: shadow, canary, full)")]
    [InlineData("--inject", "boom", "is not of the form KIND=VALUE@PHASE")]
    [InlineData("--inject", "error-rate=0.5@shadow", "phase 'shadow' exposes nobody (0 %)")]
    [InlineData("--speed", "0.5", "--speed must be a number of at least 1")]
    [InlineData("--writes", "1.5", "--writes must be a share between 0 and 1")]
    [InlineData("--backend", "cosmos", "--backend 'cosmos' is not known: use in-memory or azure-storage")]
    [InlineData("--approve", "maybe", "--approve 'maybe' is not known: use auto or prompt")]
    public async Task Bad_input_is_refused_with_exit_1_naming_the_problem_and_the_fix(string option, string value, string message)
    {
        var (code, _, error) = await CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data, option, value);

        Assert.Equal(1, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_run.Data));
    }

    [Fact]
    public async Task Without_a_source_table_the_run_says_how_to_get_one()
    {
        var (code, _, error) = await CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data);

        Assert.Equal(1, code);
        Assert.Contains("--rows N", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_and_commands_without_a_running_rollout_say_so()
    {
        var (code, _, error) = await CliRunner.RunAsync("status", "e2e-orders", "--data", _run.Data);

        Assert.Equal(1, code);
        Assert.Contains("no rollout is running on", error, StringComparison.Ordinal);
        Assert.Contains("rollout run <spec>", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_terminal_sees_the_status_and_approves_through_the_control_endpoint()
    {
        var run = CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data, "--rows", "1000", "--speed", "60", "--rps", "300", "--approve", "prompt");

        var waiting = await PollAsync(async () =>
        {
            var (code, output, _) = await CliRunner.RunAsync("status", "e2e-orders", "--data", _run.Data);
            return code == 0 && output.Contains("awaitingApproval", StringComparison.Ordinal) ? output : null;
        });
        Assert.Contains("phase canary (2 of 3), exposure 20%, reads live", waiting, StringComparison.Ordinal);
        var json = await CliRunner.RunAsync("status", "e2e-orders", "--data", _run.Data, "--json");
        using (var status = JsonDocument.Parse(json.Output))
        {
            Assert.Equal("awaitingApproval", status.RootElement.GetProperty("status").GetString());
            Assert.Equal("canary", status.RootElement.GetProperty("phase").GetString());
            Assert.Contains(status.RootElement.GetProperty("history").EnumerateArray(), h => h.GetProperty("kind").GetString() == "verdict");
        }

        // No answer within --timeout: not confirmed, exit 1 (2 would read as "rolled back"), and what to do.
        var unconfirmed = await CliRunner.RunAsync("resume", "e2e-orders", "--data", _run.Data, "--by", "kim", "--timeout", "0.001");
        Assert.True(unconfirmed.ExitCode == 1, unconfirmed.Output + unconfirmed.Error);
        Assert.Contains("did not answer 'resume' within", unconfirmed.Error, StringComparison.Ordinal);
        Assert.Contains("check `rollout status e2e-orders`", unconfirmed.Error, StringComparison.Ordinal);

        var reject = await CliRunner.RunAsync("resume", "e2e-orders", "--data", _run.Data, "--by", "kim");
        Assert.Equal(1, reject.ExitCode);
        Assert.Contains("refused: the rollout is not paused", reject.Error, StringComparison.Ordinal);
        var approve = await CliRunner.RunAsync("approve", "e2e-orders", "--data", _run.Data, "--by", "kim", "--comment", "looks good");
        Assert.True(approve.ExitCode == 0, approve.Output + approve.Error);
        Assert.Contains("approved by kim (looks good) on snapshot", approve.Output, StringComparison.Ordinal);

        var (exit, output, error) = await run;
        Assert.True(exit == 0, output + error);
        var record = (await RunRecord.LoadAsync(_run.Data, default))!;
        Assert.Contains(record.Journal, j => j.Kind == "approval" && j.Detail.StartsWith("approved by kim (looks good)", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(_run.Data, ControlFile.FileName)));
    }

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d figures  (?<phase>\w+) +[0-9.]+% reads \w+ \| legacy \d+ req/s, err [0-9.]+ ?%, p95 [^|]+ \| new \d+ req/s, err [0-9.]+ ?%, p95 [^|]+ \| feed lag [0-9,]+ \| drift [0-9.]+ ?% \(reconciliations \d+, last [0-9,]+/[0-9,]+\) \| next: .+$", RegexOptions.Multiline)]
    private static partial Regex FiguresLine();

    private static async Task<string> PollAsync(Func<Task<string?>> probe)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (await probe() is { } found)
            {
                return found;
            }

            await Task.Delay(100);
        }

        throw new Xunit.Sdk.XunitException("timed out waiting for the rollout");
    }

    private EmbeddedRollout Open() =>
        EmbeddedRollout.Open(_run.Data, RolloutSpecLoader.Load(Spec).Spec!, TimeProvider.System);

    private async Task<(long Drifted, long Compared, int Runs)> CheckStoresAsync()
    {
        await using var rollout = Open();
        var check = await rollout.Reconciler().RunAsync(rollout.ReconcileOptions(ReconcileDepth.Deep) with { Mode = RepairMode.Report }, null, default);
        var runs = await rollout.Audit.ListRunsAsync("e2e-orders", 1000, default);
        return (check.Counts.Drifted, check.Counts.Compared, runs.Count - 1);
    }
}
