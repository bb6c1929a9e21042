using System.Diagnostics;
using System.Text.Json;
using Rollout.Cli.Run;
using Rollout.Core.Spec;
using Rollout.Orchestration.Tests;
using Rollout.Storage.Sqlite;

namespace Rollout.Cli.Tests;

/// <summary>
/// `rollout run --backend azure-storage` against Azurite: the run process is killed (SIGKILL) in the middle of a
/// bake, and the next `rollout run` on the same data folder resumes the rollout from where it was.
/// </summary>
public sealed class DurableRunTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>, IDisposable
{
    private readonly RunFolder _run = new("rollout-durable-run", RunCommandTests.Spec.Replace(
        "{ \"name\": \"canary\", \"exposure\": 20, \"bake\": \"PT1M\", \"approval\": { \"timeout\": \"PT30M\", \"onTimeout\": \"rollback\" } }",
        "{ \"name\": \"canary\", \"exposure\": 20, \"bake\": \"PT40M\" }", StringComparison.Ordinal));

    private readonly string _hub = "run" + Guid.NewGuid().ToString("N")[..10];

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task A_run_killed_in_the_middle_of_a_bake_is_resumed_by_the_next_run_from_where_it_was()
    {
        Assert.Contains("PT40M", File.ReadAllText(_run.Spec), StringComparison.Ordinal);
        var (first, _, _) = Start();
        var before = await PollStatusAsync(s => s.GetProperty("phase").GetString() == "canary" && s.GetProperty("status").GetString() == "baking", first);
        var until = before.GetProperty("waiting").GetProperty("until").GetString();

        first.Kill(entireProcessTree: true); // SIGKILL: no shutdown, no rollback, leases and messages left behind
        await first.WaitForExitAsync();
        first.Dispose();
        var killedAt = DateTimeOffset.UtcNow;

        var (second, stdout, stderr) = Start();
        using var secondProcess = second;
        var during = await PollStatusAsync(s => s.GetProperty("snapshot").GetInt64() > before.GetProperty("snapshot").GetInt64(), second);
        try
        {
            await second.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(240));
        }
        catch (TimeoutException)
        {
            second.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"the second run did not end within 240 s; last status: {(await CliRunner.RunAsync("status", "--data", _run.Data)).Output}\n{await stdout}\n{await stderr}");
        }

        Assert.True(second.ExitCode == 0, $"exit {second.ExitCode}\n{await stdout}\n{await stderr}");
        Assert.Equal("completed", JsonDocument.Parse(await stdout).RootElement.GetProperty("outcome").GetString());
        Assert.Contains("resuming the rollout already in flight: baking in phase canary", await stderr, StringComparison.Ordinal);
        Assert.Equal(("canary", until), (during.GetProperty("phase").GetString(), during.GetProperty("waiting").GetProperty("until").GetString()));
        await using var rollout = EmbeddedRollout.Open(_run.Data, RolloutSpecLoader.Load(File.ReadAllText(_run.Spec)).Spec!, TimeProvider.System);
        var changes = await rollout.Rollouts.ReadStateHistoryAsync("e2e-orders");
        Assert.Equal(["shadow", "canary", "full"], changes.Select(c => c.State.Phase).ToArray());
        var journal = await rollout.Rollouts.ReadAsync("e2e-orders", default);
        var canaryVerdict = journal.Single(j => j.Kind == "verdict" && j.Phase == "canary" && j.Detail.StartsWith("end of bake", StringComparison.Ordinal));
        Assert.True(canaryVerdict.At > killedAt, "the canary's bake ended under the second run");
        Assert.Equal("completed", (await RunRecord.LoadAsync(_run.Data, default))!.Outcome);
    }

    private (Process Process, Task<string> Stdout, Task<string> Stderr) Start()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "rollout.dll"), "run", _run.Spec, "--data", _run.Data, "--rows", "1000", "--speed", "60", "--rps", "100",
            "--approve", "auto", "--backend", "azure-storage", "--json",
        })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["Rollout__Orchestration__AzureStorageConnectionString"] = azurite.ConnectionString;
        start.Environment["Rollout__Orchestration__TaskHub"] = _hub;
        start.Environment["Rollout__Orchestration__RecoveryTime"] = "00:00:08";
        var process = Process.Start(start)!;
        return (process, process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
    }

    private async Task<JsonElement> PollStatusAsync(Func<JsonElement, bool> condition, Process run)
    {
        var deadline = DateTime.UtcNow.AddSeconds(180); // generous: two runs, Azurite and a takeover on a loaded 2-core machine
        while (DateTime.UtcNow < deadline)
        {
            if (run.HasExited)
            {
                throw new Xunit.Sdk.XunitException($"the run exited early ({run.ExitCode})");
            }

            var (code, output, _) = await CliRunner.RunAsync("status", "--data", _run.Data, "--json");
            if (code == 0)
            {
                var status = JsonDocument.Parse(output).RootElement.Clone();
                if (condition(status))
                {
                    return status;
                }
            }

            await Task.Delay(100);
        }

        throw new Xunit.Sdk.XunitException($"timed out waiting for the rollout's status; last: {(await CliRunner.RunAsync("status", "--data", _run.Data)).Output}");
    }
}
