using System.Diagnostics;
using Rollout.Cli.Run;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;

namespace Rollout.Cli.Tests;

/// <summary>What `rollout run` does when things go wrong around it: Ctrl+C, a second run, a stale control file, long histories.</summary>
public sealed class RunRobustnessTests : IDisposable
{
    private readonly RunFolder _run = new("rollout-run-robust", RunCommandTests.Spec.Replace(
        "{ \"name\": \"canary\", \"exposure\": 20, \"bake\": \"PT1M\", \"approval\": { \"timeout\": \"PT30M\", \"onTimeout\": \"rollback\" } }",
        "{ \"name\": \"canary\", \"exposure\": 20, \"bake\": \"PT2H\" }", StringComparison.Ordinal));

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task Ctrl_C_rolls_the_rollout_back_before_the_process_exits()
    {
        // Through env --default-signal=INT: a test run started as a background job of a shell without job control (nohup …
        // &) inherits SIGINT as ignored, and .NET keeps an inherited ignore, so the run would never see the Ctrl+C (as a
        // background job should not); the test is about the run's handling of the signal, not about how it was started.
        var start = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "--default-signal=INT", "dotnet", Path.Combine(AppContext.BaseDirectory, "rollout.dll"), "run", _run.Spec, "--data", _run.Data, "--rows", "500", "--speed", "60", "--rps", "200", "--approve", "auto" })
        {
            start.ArgumentList.Add(argument);
        }

        using var run = Process.Start(start)!;
        var stdout = run.StandardOutput.ReadToEndAsync();
        var stderr = run.StandardError.ReadToEndAsync();
        await PollAsync(async () => (await CliRunner.RunAsync("status", "--data", _run.Data)).Output.Contains("baking — phase canary", StringComparison.Ordinal), run);

        // The canary bakes two minutes at --speed 60, so that the signal finds the run in that phase even when the status
        // polls above are slow on a loaded machine.
        var signalled = DateTime.UtcNow;
        using (var signal = Process.Start("kill", ["-INT", run.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await signal.WaitForExitAsync();
        }

        await run.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        var output = await stdout + await stderr;
        Assert.True(run.ExitCode == 2, $"exit {run.ExitCode}, SIGINT sent at {signalled:HH:mm:ss.f} UTC\n{output}");
        Assert.Contains("interrupted: rolling back before exiting", output, StringComparison.Ordinal);
        await using var rollout = EmbeddedRollout.Open(_run.Data, RolloutSpecLoader.Load(File.ReadAllText(_run.Spec)).Spec!, TimeProvider.System);
        var state = await rollout.Rollouts.GetStateAsync("e2e-orders", default);
        Assert.Equal((0, ReadMode.Legacy), (state.Exposure.Buckets, state.Reads));
        var journal = await rollout.Rollouts.ReadAsync("e2e-orders", default);
        Assert.Contains(journal, j => j.Kind == "finish" && j.Detail.Contains("rolled back by rollout run (Ctrl+C) in phase 'canary': interrupted by the operator", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(_run.Data, ControlFile.FileName)));
    }

    [Fact]
    public async Task A_second_run_on_the_same_data_folder_is_refused_while_the_first_runs()
    {
        using var stop = new CancellationTokenSource();
        var first = CliRunner.RunAsync(stop.Token, "run", _run.Spec, "--data", _run.Data, "--rows", "500", "--speed", "60", "--rps", "100", "--approve", "auto");
        await PollAsync(() => Task.FromResult(File.Exists(Path.Combine(_run.Data, ControlFile.FileName))), null);

        var (code, _, error) = await CliRunner.RunAsync("run", _run.Spec, "--data", _run.Data, "--rows", "500");

        Assert.Equal(1, code);
        Assert.Contains("another 'rollout run'", error, StringComparison.Ordinal);
        await stop.CancelAsync();
        var firstResult = await first; Assert.True(firstResult.ExitCode == 2, firstResult.Output + firstResult.Error); // interrupted: rolled back
    }

    [Fact]
    public async Task A_corrupt_or_stale_control_file_is_reported_not_thrown_and_does_not_block_a_new_run()
    {
        Directory.CreateDirectory(_run.Data);
        await File.WriteAllTextAsync(Path.Combine(_run.Data, ControlFile.FileName), "{ \"processId\": 1, \"addr");
        var corrupt = await CliRunner.RunAsync("status", "--data", _run.Data);
        await File.WriteAllTextAsync(Path.Combine(_run.Data, ControlFile.FileName), "{ \"processId\": 1, \"address\": \"http://127.0.0.1:1\", \"feature\": \"e2e-orders\", \"startedAt\": \"2020-01-01T00:00:00Z\" }");
        var reused = await CliRunner.RunAsync("status", "--data", _run.Data);

        Assert.Equal(1, corrupt.ExitCode);
        Assert.Contains("is unreadable", corrupt.Error, StringComparison.Ordinal);
        Assert.Equal(1, reused.ExitCode); // pid 1 is alive, but it is not the run that wrote the file
        Assert.Contains("is no longer running", reused.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_live_run_whose_control_endpoint_does_not_answer_is_reported_with_exit_1()
    {
        // This test process stands for the run: alive, started before the file was written, but nothing listens there.
        Directory.CreateDirectory(_run.Data);
        await new ControlFile(Environment.ProcessId, "http://127.0.0.1:1", "e2e-orders", DateTimeOffset.UtcNow).WriteAsync(_run.Data, default);

        var status = await CliRunner.RunAsync("status", "--data", _run.Data);
        var pause = await CliRunner.RunAsync("pause", "--data", _run.Data, "--timeout", "5");

        foreach (var (code, output, error) in new[] { status, pause })
        {
            Assert.True(code == 1, output + error);
            Assert.Contains($"did not answer at http://127.0.0.1:1 (Unavailable)", error, StringComparison.Ordinal);
            Assert.Contains("check 'rollout status e2e-orders'", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", output + error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Plain_output_prints_every_history_entry_of_a_long_rollout()
    {
        var phases = string.Join(", ", Enumerable.Range(1, 8).Select(i => $"{{ \"name\": \"p{i}\", \"exposure\": {i * 10}, \"bake\": \"PT30S\" }}"));
        var spec = CliRunner.TempSpec(RunCommandTests.Spec[..RunCommandTests.Spec.IndexOf("\"phases\"", StringComparison.Ordinal)] +
            $"\"phases\": [ {phases} ], \"budgets\": {{ \"evaluateEvery\": \"PT12S\", \"minSamples\": 500 }} }}");
        try
        {
            var (code, output, error) = await CliRunner.RunAsync("run", spec, "--data", _run.Data, "--rows", "500", "--speed", "60", "--rps", "300", "--approve", "auto");

            Assert.True(code == 0, output + error);
            for (var i = 1; i <= 8; i++)
            {
                Assert.Contains($"phase 'p{i}' ({i} of 8)", output, StringComparison.Ordinal);
            }

            Assert.Contains("finish   p8         completed", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(spec);
        }
    }

    private static async Task PollAsync(Func<Task<bool>> condition, Process? process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process is { HasExited: true })
            {
                throw new Xunit.Sdk.XunitException($"the run exited early ({process.ExitCode})");
            }

            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new Xunit.Sdk.XunitException("timed out");
    }
}
