using Rollout.Core.Spec;
using Rollout.Orchestration;

namespace Rollout.Orchestration.Tests;

/// <summary>Human approval: an external event raced against a durable timer, on the evidence the approver saw.</summary>
public sealed class ApprovalTests
{
    // Health every 0.5 s over the last 1.5 s: windows hold hundreds of samples even on a loaded machine.
    private static RolloutSpec WithApproval(TimeoutAction onTimeout, string timeout = "PT1M") => RolloutHarness.OrdersSpec(
        [
            new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT30S", Approval = new ApprovalSpec { Timeout = timeout, OnTimeout = onTimeout } },
            new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT30S" },
        ],
        b => b.EvaluateEvery = "PT30S");

    [Fact]
    public async Task An_approval_on_the_current_snapshot_moves_on_and_the_history_says_who_and_on_what()
    {
        await using var h = await RolloutHarness.StartAsync(WithApproval(TimeoutAction.Rollback, "PT60M"));
        await h.StartRolloutAsync();
        RolloutStatusView waiting;
        CommandAnswer answer;
        var looks = 0;
        do
        {
            // As an operator would: when the evidence changed after the look (on a loaded machine the synthetic traffic can
            // fall short of the minimum samples for one window), look again and approve on the new snapshot.
            waiting = await h.WaitForStatusAsync(s => s.Status == "awaitingApproval" && s.LastVerdict?.Kind == "healthy", "waiting for approval on a healthy verdict");
            Assert.Equal("approval", waiting.Waiting.Kind);
            Assert.NotNull(waiting.Waiting.Until);
            answer = await h.Control.SendAsync(h.Feature, RolloutEvents.Approve, "dana", "dashboards look fine", waiting.Snapshot);
        }
        while (!answer.Accepted && answer.Message.Contains("a newer verdict came in snapshot", StringComparison.Ordinal) && ++looks < 5);

        Assert.True(answer.Accepted, answer.Message);
        Assert.Equal($"approved by dana (dashboards look fine) on snapshot {waiting.Snapshot}", answer.Message);
        var end = await h.WaitForEndAsync();
        Assert.Equal("completed", end.Result!.Outcome);
        var journal = await h.Rollout.Rollouts.ReadAsync(h.Feature, default);
        var approval = Assert.Single(journal, j => j.Kind == "approval" && j.Phase == "canary");
        Assert.StartsWith(answer.Message + "; evidence: healthy since snapshot ", approval.Detail, StringComparison.Ordinal);
        Assert.Contains("new path n=", approval.Detail, StringComparison.Ordinal); // the figures the verdict stood on
    }

    [Fact]
    public async Task An_approval_without_a_snapshot_or_on_a_stale_one_is_refused_and_the_rollout_keeps_waiting()
    {
        await using var h = await RolloutHarness.StartAsync(WithApproval(TimeoutAction.Rollback, "PT60M"));
        await h.StartRolloutAsync();
        var seen = await h.WaitForStatusAsync(s => s.Status == "awaitingApproval" && s.LastVerdict?.Kind == "healthy", "waiting for approval on a healthy verdict");

        var blind = await h.Control.SendAsync(h.Feature, RolloutEvents.Approve, "erin");
        Assert.False(blind.Accepted);
        Assert.Contains("must name the status snapshot", blind.Message, StringComparison.Ordinal);

        // The evidence changes after the approver looked: the new path starves, the verdict turns to insufficient data.
        h.Traffic.CandidateTraffic = false;
        var changed = await h.WaitForStatusAsync(s => s.LastVerdict?.Kind == "insufficientData", "a verdict of another kind");
        Assert.True(changed.Snapshot > seen.Snapshot);
        var stale = await h.Control.SendAsync(h.Feature, RolloutEvents.Approve, "erin", null, seen.Snapshot);

        Assert.False(stale.Accepted);
        Assert.Contains($"given on status snapshot {seen.Snapshot}, but a newer verdict came in snapshot", stale.Message, StringComparison.Ordinal);
        Assert.Contains("insufficientData", stale.Message, StringComparison.Ordinal);
        var status = (await h.Control.GetStatusAsync(h.Feature))!.View!;
        Assert.Equal("awaitingApproval", status.Status);

        // Looking again and approving on what is now shown is accepted.
        var fresh = await h.Control.SendAsync(h.Feature, RolloutEvents.Approve, "erin", null, status.Snapshot);
        Assert.True(fresh.Accepted, fresh.Message);
    }

    [Fact]
    public async Task A_rejected_approval_rolls_back()
    {
        await using var h = await RolloutHarness.StartAsync(WithApproval(TimeoutAction.Halt, "PT60M"));
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "awaitingApproval", "waiting for approval");

        var answer = await h.Control.SendAsync(h.Feature, RolloutEvents.Reject, "frank", "latency looks odd");

        Assert.True(answer.Accepted, answer.Message);
        var end = await h.WaitForEndAsync();
        Assert.Equal("rolledBack", end.Result!.Outcome);
        Assert.Equal(["approval of phase 'canary' rejected by frank: latency looks odd"], end.Result.Reasons);
        Assert.Equal(0m, (await h.Rollout.Rollouts.GetStateAsync(h.Feature, default)).Exposure.Percent);
    }

    [Theory]
    [InlineData(TimeoutAction.Rollback, "rolledBack", 0)]
    [InlineData(TimeoutAction.Halt, "halted", 5)]
    public async Task An_unanswered_approval_times_out_and_follows_its_action(TimeoutAction action, string outcome, decimal exposureLeft)
    {
        await using var h = await RolloutHarness.StartAsync(WithApproval(action, "PT1M"));
        await h.StartRolloutAsync();

        var end = await h.WaitForEndAsync();

        Assert.Equal(outcome, end.Result!.Outcome);
        // The spec's minute runs as a second here, and the reason gives the time actually waited.
        Assert.StartsWith("approval of phase 'canary' timed out after PT1S", Assert.Single(end.Result.Reasons), StringComparison.Ordinal);
        Assert.Equal(exposureLeft, (await h.Rollout.Rollouts.GetStateAsync(h.Feature, default)).Exposure.Percent);
    }

    [Fact]
    public async Task Approving_when_nothing_waits_for_approval_is_refused()
    {
        await using var h = await RolloutHarness.StartAsync(WithApproval(TimeoutAction.Halt, "PT60M"));
        await h.StartRolloutAsync();
        var baking = await h.WaitForStatusAsync(s => s.Status == "baking", "baking");

        var early = await h.Control.SendAsync(h.Feature, RolloutEvents.Approve, "gus", null, baking.Snapshot);

        Assert.False(early.Accepted);
        Assert.Equal("the rollout is not waiting for an approval", early.Message);
    }

    [Fact]
    public async Task A_rollback_sent_together_with_an_approval_is_never_lost_at_the_phase_change()
    {
        await using var h = await RolloutHarness.StartAsync(WithApproval(TimeoutAction.Halt, "PT60M"));
        await h.StartRolloutAsync();
        var waiting = await h.WaitForStatusAsync(s => s.Status == "awaitingApproval" && s.LastVerdict?.Kind == "healthy", "waiting for approval");

        // Raised back to back, so that both land in the orchestration's same batch: the approval moves the rollout to
        // the next phase (a new generation), and the rollback arrives while the old generation still waits for it.
        var id = RolloutOrchestrator.InstanceIdFor(h.Feature);
        await h.Client.RaiseEventAsync(id, RolloutEvents.Approval, new OperatorCommand("a1", RolloutEvents.Approve, "hana", null, waiting.Snapshot));
        await h.Client.RaiseEventAsync(id, RolloutEvents.Operator, new OperatorCommand("r1", RolloutEvents.Rollback, "ivan", "changed my mind"));

        await h.WaitForStatusAsync(s => s.Status is "rolledBack" or "completed" or "halted", "the end", TimeSpan.FromSeconds(30));
        var end = await h.WaitForEndAsync();
        Assert.Equal("rolledBack", end.Result!.Outcome);
        Assert.Contains("rolled back by ivan", Assert.Single(end.Result.Reasons), StringComparison.Ordinal);
    }
}
