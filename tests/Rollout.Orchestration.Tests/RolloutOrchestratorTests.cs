using Microsoft.Extensions.DependencyInjection;
using Microsoft.DurableTask.Client;
using Rollout.Core.Exposure;
using Rollout.Core.Spec;
using Rollout.Orchestration;

namespace Rollout.Orchestration.Tests;

/// <summary>The rollout orchestration on the real Durable Task SDK (in-memory backend) over real SQLite stores.</summary>
public sealed class RolloutOrchestratorTests
{
    [Fact]
    public async Task Healthy_rollout_walks_every_phase_in_order_and_completes()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        var factory = h.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var phaseChanges = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var verdicts = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Name is "rollout.phase.changes" or "rollout.health.verdicts")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) =>
        {
            var values = tags.ToArray().ToDictionary(t => t.Key, t => t.Value);
            (instrument.Name == "rollout.phase.changes" ? phaseChanges : verdicts).Enqueue($"{values["rollout.phase"]}:{values.GetValueOrDefault("rollout.exposure") ?? values["rollout.verdict"]}:{values.GetValueOrDefault("rollout.final")}");
        });
        listener.Start();
        await h.StartRolloutAsync();

        var end = await h.WaitForEndAsync();

        // Every phase change and verdict is measured (OpenTelemetry instruments on the host's meter).
        Assert.Equal(["shadow:0:", "canary:5:", "full:100:"], phaseChanges.ToArray());
        // (A bake that ends short of the minimum samples, as on a loaded machine, is extended: its insufficientData verdict is
        // not the phase's last.)
        Assert.Equal(["shadow:healthy:True", "canary:healthy:True", "full:healthy:True"],
            verdicts.Where(v => v.EndsWith(":True", StringComparison.Ordinal) && !v.Contains(":insufficientData:", StringComparison.Ordinal)).ToArray());

        Assert.Equal(OrchestrationRuntimeStatus.Completed, end.RuntimeStatus);
        Assert.Equal("completed", end.Result!.Outcome);
        Assert.Empty(end.Result.Reasons);
        var changes = await h.Rollout.Rollouts.ReadStateHistoryAsync(h.Feature);
        Assert.Equal(
            [("shadow", 0m, ReadMode.Shadow), ("canary", 5m, ReadMode.Live), ("full", 100m, ReadMode.Live)],
            changes.Select(c => (c.State.Phase, c.State.Exposure.Percent, c.State.Reads)).ToArray());
        var state = await h.Rollout.Rollouts.GetStateAsync(h.Feature, default);
        Assert.Equal(ExposureLevel.Full, state.Exposure);

        var journal = await h.Rollout.Rollouts.ReadAsync(h.Feature, default);
        Assert.Equal(["shadow", "canary", "full"], journal.Where(j => j.Kind == "phase").Select(j => j.Phase).ToArray());
        Assert.Equal(3, journal.Count(j => j.Kind == "verdict" && j.Detail.StartsWith("end of bake: healthy", StringComparison.Ordinal)));
        Assert.Equal("finish", journal[^1].Kind);
        Assert.Equal("completed", end.View!.Status);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_breach_during_phase_k_rolls_back_to_zero_reads_legacy_and_reconciles(int k)
    {
        var spec = RolloutHarness.OrdersSpec(
        [
            new PhaseSpec { Name = "shadow", Exposure = 0, Reads = ReadMode.Shadow, Bake = "PT2M" },
            new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT2M" },
            new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT2M" },
        ]);
        await using var h = await RolloutHarness.StartAsync(spec);
        await h.StartRolloutAsync();
        var phase = spec.Phases[k].Name;
        await h.WaitForStatusAsync(s => s.Phase == phase && s.Status == "baking", $"phase {phase} baking");

        // At 0 % nobody is on the new path: the signal there is shadow drift. Elsewhere, errors on the new path.
        if (k == 0)
        {
            h.Traffic.InjectDrift(0.5);
        }
        else
        {
            h.Traffic.InjectErrors(0.5);
        }

        var end = await h.WaitForEndAsync();

        Assert.Equal("rolledBack", end.Result!.Outcome);
        Assert.Equal(phase, end.Result.Phase);
        var reason = Assert.Single(end.Result.Reasons);
        Assert.Contains($"phase '{phase}'", reason, StringComparison.Ordinal);
        Assert.Contains(k == 0 ? "maxDriftRate broken" : "maxErrorRateIncrease broken", reason, StringComparison.Ordinal);
        // Observed vs allowed, with the budget's own figure (0.05 error-rate increase, 0.01 drift in these tests).
        Assert.Matches(k == 0 ? @"drift \d+\.\d{3} ?% \(\d+ of \d+ keys\), allowed 1\.000 ?%" : @"error rate \d+\.\d\d ?% on the new path vs \d+\.\d\d ?% on legacy: \+\d+(\.\d+)? points, allowed \+5", reason);
        var state = await h.Rollout.Rollouts.GetStateAsync(h.Feature, default);
        Assert.Equal((ExposureLevel.None, ReadMode.Legacy), (state.Exposure, state.Reads));
        var last = (await h.Rollout.Rollouts.ReadStateHistoryAsync(h.Feature))[^1];
        Assert.StartsWith("rollback: ", last.Reason, StringComparison.Ordinal);

        // The reconciliation ran: audited, and the rows the pipeline never copied were repaired (the source wins).
        Assert.StartsWith("reconciliation run ", end.Result.Reconciliation, StringComparison.Ordinal);
        var runs = await h.Rollout.Audit.ListRunsAsync(h.Feature, 10, default);
        Assert.Single(runs);
        Assert.Equal(40, runs[0].Counts.Repaired);
    }

    [Fact]
    public async Task Starting_a_second_rollout_of_a_live_feature_is_refused_with_a_clear_message()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        await h.StartRolloutAsync();

        var refused = await Assert.ThrowsAsync<RolloutAlreadyRunningException>(h.StartRolloutAsync);

        Assert.Contains("A rollout of 'orders-v2' is already live", refused.Message, StringComparison.Ordinal);
        Assert.Contains("rollout rollback orders-v2", refused.Message, StringComparison.Ordinal);
        var end = await h.WaitForEndAsync();
        Assert.Equal("completed", end.Result!.Outcome);

        // Once the first has ended, a new rollout of the feature may start.
        await h.StartRolloutAsync();
        Assert.Equal("completed", (await h.WaitForEndAsync()).Result!.Outcome);
    }

    [Theory]
    [InlineData("shadow", false)]
    [InlineData("canary", false)]
    [InlineData("canary", true)]
    [InlineData("full", false)]
    public async Task A_manual_rollback_in_any_phase_or_while_paused_rolls_back_with_who_and_why(string phase, bool paused)
    {
        var spec = RolloutHarness.OrdersSpec(
        [
            new PhaseSpec { Name = "shadow", Exposure = 0, Reads = ReadMode.Shadow, Bake = "PT2M" },
            new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT2M" },
            new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT2M" },
        ]);
        await using var h = await RolloutHarness.StartAsync(spec);
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Phase == phase && s.Status == "baking", $"{phase} baking");
        if (paused)
        {
            Assert.True((await h.Control.SendAsync(h.Feature, RolloutEvents.Pause, "bob")).Accepted);
            await h.WaitForStatusAsync(s => s.Status == "paused", "paused");
        }

        var answer = await h.Control.SendAsync(h.Feature, RolloutEvents.Rollback, "alice", "checkout errors reported by support");

        Assert.True(answer.Accepted, answer.Message);
        var end = await h.WaitForEndAsync();
        Assert.Equal("rolledBack", end.Result!.Outcome);
        Assert.Equal([$"rolled back by alice in phase '{phase}': checkout errors reported by support"], end.Result.Reasons);
        var state = await h.Rollout.Rollouts.GetStateAsync(h.Feature, default);
        Assert.Equal((ExposureLevel.None, ReadMode.Legacy), (state.Exposure, state.Reads));
        var history = await h.Rollout.Rollouts.ReadStateHistoryAsync(h.Feature);
        Assert.Equal(phase, history[^1].State.Phase);
        Assert.StartsWith("rollback: ", history[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pause_holds_the_phase_past_its_bake_and_resume_bakes_it_again()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Phase == "canary" && s.Status == "baking", "canary baking");

        Assert.True((await h.Control.SendAsync(h.Feature, RolloutEvents.Pause, "bob")).Accepted);
        var paused = await h.WaitForStatusAsync(s => s.Status == "paused", "paused");
        Assert.Equal("paused", paused.Waiting.Kind);
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // longer than the canary's whole bake (1 s)
        var still = (await h.Control.GetStatusAsync(h.Feature))!.View!;
        Assert.Equal(("paused", "canary"), (still.Status, still.Phase));
        Assert.Equal(5m, (await h.Rollout.Rollouts.GetStateAsync(h.Feature, default)).Exposure.Percent);

        // A second pause, or a skip of a bake that does not allow it, is refused with the reason.
        var again = await h.Control.SendAsync(h.Feature, RolloutEvents.Pause, "bob");
        Assert.False(again.Accepted);
        Assert.Contains("paused", again.Message, StringComparison.Ordinal);

        Assert.True((await h.Control.SendAsync(h.Feature, RolloutEvents.Resume, "bob")).Accepted);
        var resumed = await h.WaitForStatusAsync(s => s.Status == "baking", "baking again");
        Assert.Equal("canary", resumed.Phase);
        Assert.Equal("completed", (await h.WaitForEndAsync()).Result!.Outcome);
    }

    [Fact]
    public async Task Skip_bake_is_refused_unless_the_phase_allows_it_and_then_ends_the_bake_at_once()
    {
        var spec = RolloutHarness.OrdersSpec(
        [
            new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT1M" },
            new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT60M", AllowSkipBake = true },
        ]);
        await using var h = await RolloutHarness.StartAsync(spec);
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Phase == "canary" && s.Status == "baking", "canary baking");

        var refused = await h.Control.SendAsync(h.Feature, RolloutEvents.SkipBake, "carol");
        Assert.False(refused.Accepted);
        Assert.Contains("does not allow skipping its bake", refused.Message, StringComparison.Ordinal);

        await h.WaitForStatusAsync(s => s.Phase == "full" && s.Status == "baking" && s.LastVerdict?.Phase == "full", "full baking with a verdict");
        var skipped = await h.Control.SendAsync(h.Feature, RolloutEvents.SkipBake, "carol");
        Assert.True(skipped.Accepted, skipped.Message);

        // A bake of an hour here (60 spec minutes) ends within seconds.
        var end = await h.WaitForEndAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("completed", end.Result!.Outcome);
    }

    [Fact]
    public async Task Insufficient_data_extends_the_bake_up_to_the_limit_then_halts_with_exposure_left()
    {
        var spec = RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT30S" }]);
        await using var h = await RolloutHarness.StartAsync(spec, new Traffic { CandidateTraffic = false });
        await h.StartRolloutAsync();

        var end = await h.WaitForEndAsync();

        Assert.Equal("halted", end.Result!.Outcome);
        var reason = Assert.Single(end.Result.Reasons);
        Assert.Contains("insufficient data after 2 bake extension(s)", reason, StringComparison.Ordinal);
        Assert.Contains("the new path has 0 of the 20 samples needed", reason, StringComparison.Ordinal);
        Assert.Equal(5m, (await h.Rollout.Rollouts.GetStateAsync(h.Feature, default)).Exposure.Percent);
        var journal = await h.Rollout.Rollouts.ReadAsync(h.Feature, default);
        Assert.Equal(2, journal.Count(j => j.Kind == "extend"));
    }

    [Fact]
    public async Task An_input_written_by_a_newer_build_fails_with_a_message_saying_so()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        await h.Control.StartAsync(RolloutInput.FromSpec(h.Spec, RolloutHarness.TimeScale) with { Version = RolloutOrchestrator.CurrentVersion + 1 });

        var end = await h.WaitForEndAsync();

        Assert.Equal(OrchestrationRuntimeStatus.Failed, end.RuntimeStatus);
        Assert.Contains("writes orchestration version 2; this build runs versions 1 to 1", end.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_long_phase_continues_as_new_in_the_middle_without_reapplying_or_restarting_its_bake()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        await h.Control.StartAsync(RolloutInput.FromSpec(h.Spec, RolloutHarness.TimeScale) with { EvaluationsPerGeneration = 2 });

        var end = await h.WaitForEndAsync();

        Assert.Equal("completed", end.Result!.Outcome);
        Assert.True(end.View!.Generation > 3, $"generation {end.View.Generation}: expected mid-phase generations besides one per phase");
        var changes = await h.Rollout.Rollouts.ReadStateHistoryAsync(h.Feature);
        Assert.Equal(["shadow", "canary", "full"], changes.Select(c => c.State.Phase).ToArray());
        var journal = await h.Rollout.Rollouts.ReadAsync(h.Feature, default);
        Assert.Equal(3, journal.Count(j => j.Kind == "verdict" && j.Detail.StartsWith("end of bake", StringComparison.Ordinal)));
        var phases = journal.Where(j => j.Kind == "phase").Select(j => j.At).Append(journal.Single(j => j.Kind == "finish").At).ToArray();
        for (var i = 1; i < phases.Length; i++)
        {
            // Each bake lasted at least its second (not cut short by a generation ending mid-phase).
            Assert.True((phases[i] - phases[i - 1]).TotalSeconds >= 0.95, $"phase {i} baked {(phases[i] - phases[i - 1]).TotalSeconds:0.00} s");
        }

        // Not restarted either: a generation here lasts two evaluations (0.4 s), less than a bake (1 s), so a bake that started
        // again with each generation would never end, and the rollout would not have completed. (No wall-clock upper bound:
        // a loaded machine stretched a 1 s bake to 4 s once, which proves nothing about the orchestration.)
        Assert.True(2 * IsoDuration.Parse(h.Spec.Budgets.EvaluateEvery) < IsoDuration.Parse(h.Spec.Phases[0].Bake));

        Assert.Equal(journal.Count, journal.Select(j => j.Sequence).Distinct().Count());
    }

    [Fact]
    public async Task The_status_stays_small_however_many_commands_are_refused()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");

        for (var i = 0; i < 30; i++)
        {
            Assert.False((await h.Control.SendAsync(h.Feature, RolloutEvents.Resume, new string('x', 200), new string('y', 400))).Accepted);
        }

        var view = (await h.Control.GetStatusAsync(h.Feature))!.View!;
        var size = System.Text.Json.JsonSerializer.Serialize(view).Length * 2; // UTF-16 bytes, as the 16 KB limit counts them
        Assert.InRange(size, 1, 16 * 1024);
        Assert.Equal(RolloutOrchestrator.HistoryLimit, view.History.Count);
        Assert.Equal(30, (await h.Rollout.Rollouts.ReadAsync(h.Feature, default)).Count(j => j.Kind == "refused"));
    }

    [Fact]
    public async Task A_rollout_of_a_newer_orchestration_version_is_left_pending_by_this_worker_not_failed()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT12S" }]));
        const string newer = "written-by-a-newer-build";
        await h.Client.ScheduleNewOrchestrationInstanceAsync(
            nameof(RolloutOrchestrator), RolloutInput.FromSpec(h.Spec, RolloutHarness.TimeScale), new Microsoft.DurableTask.StartOrchestrationOptions(newer) { Version = "2.0" });

        // A rollout of this build's version, scheduled after it on the same worker, runs to its end meanwhile: the
        // worker dispatched work and left the newer one alone.
        await h.StartRolloutAsync();
        Assert.Equal("completed", (await h.WaitForEndAsync()).Result!.Outcome);

        var metadata = await h.Client.GetInstanceAsync(newer, getInputsAndOutputs: true);
        Assert.Equal(OrchestrationRuntimeStatus.Pending, metadata!.RuntimeStatus);
        Assert.Null(metadata.SerializedCustomStatus); // never ran a line of the orchestrator
        Assert.Equal(["canary"], (await h.Rollout.Rollouts.ReadStateHistoryAsync(h.Feature)).Select(c => c.State.Phase).ToArray());
        await h.Client.TerminateInstanceAsync(newer);
    }
}
