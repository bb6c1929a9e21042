using Rollout.Core.Exposure;
using Rollout.Core.Health;
using Rollout.Core.Plan;
using Rollout.Core.Spec;
using static Rollout.Core.Plan.RolloutCommand;
using static Rollout.Core.Plan.RolloutEvent;

namespace Rollout.Core.Tests.Plan;

public sealed class PhasePlanTests
{
    // shadow 0% (10 min) -> canary 1% (30 min, approval 4 h, rollback on timeout) -> full 100% (1 h)
    private readonly PhasePlan _plan = PhasePlan.FromSpec(SpecFixtures.Spec());

    private static readonly HealthFigures Figures = new(1000, 0, 10, 1000, 0, 10, "legacy", 0, 0);
    private static readonly HealthVerdict Healthy = new HealthVerdict.Healthy(Figures);
    private static readonly HealthVerdict Insufficient = new HealthVerdict.InsufficientData("the new path has 3 of the 500 samples needed", 3, 500, Figures);
    private static readonly HealthVerdict Breach = new HealthVerdict.Breach([new BudgetBreach("maxErrorRateIncrease", 0.02, 0.005, "error rate +2 points")], Figures);

    [Fact]
    public void From_spec_parses_durations_and_defaults_read_modes()
    {
        Assert.Equal(3, _plan.Phases.Count);
        Assert.Equal(ReadMode.Shadow, _plan.Phases[0].Reads);
        Assert.Equal(ReadMode.Live, _plan.Phases[1].Reads);
        Assert.Equal(ExposureLevel.FromPercent(1), _plan.Phases[1].Exposure);
        Assert.Equal(TimeSpan.FromMinutes(30), _plan.Phases[1].Bake);
        Assert.Equal(TimeSpan.FromHours(4), _plan.Phases[1].ApprovalTimeout);
        Assert.Null(_plan.Phases[2].ApprovalTimeout);
        Assert.Equal(TimeSpan.FromMinutes(5), _plan.ExtendBakeBy);
        Assert.Equal(TimeSpan.FromMinutes(10 + 30 + 240 + 60 + 3 * 3 * 5), _plan.WorstCaseDuration);
    }

    [Fact]
    public void Happy_path_walks_every_phase_to_completed()
    {
        var state = RolloutState.Initial;
        var applied = new List<string>();

        state = Step(state, new Start(), applied);
        Assert.Equal((RolloutStatus.Baking, 0), (state.Status, state.PhaseIndex));
        state = Step(state, new HealthEvaluated(Healthy), applied);
        state = Step(state, new BakeCompleted(Healthy), applied);
        Assert.Equal((RolloutStatus.Baking, 1), (state.Status, state.PhaseIndex));
        state = Step(state, new BakeCompleted(Healthy), applied);
        Assert.Equal(RolloutStatus.AwaitingApproval, state.Status);
        state = Step(state, new ApprovalAnswered(true, "ana", "looks good"), applied);
        Assert.Equal((RolloutStatus.Baking, 2, ExposureLevel.Full, ReadMode.Live), (state.Status, state.PhaseIndex, state.Exposure, state.Reads));
        var last = _plan.Apply(state, new BakeCompleted(Healthy));

        Assert.Equal(RolloutStatus.Completed, last.State.Status);
        Assert.True(last.State.IsTerminal);
        Assert.Equal(new Finish(RolloutStatus.Completed, []).Outcome, Assert.IsType<Finish>(Assert.Single(last.Commands)).Outcome);
        Assert.Equal(["shadow", "canary", "full"], applied);
    }

    [Fact]
    public void Entering_a_phase_applies_it_then_bakes()
    {
        var start = _plan.Apply(RolloutState.Initial, new Start());

        Assert.Collection(start.Commands,
            c => Assert.Equal(_plan.Phases[0], Assert.IsType<ApplyPhase>(c).Phase),
            c => Assert.Equal(new Bake(TimeSpan.FromMinutes(10), 0), c));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void A_breach_during_any_phase_rolls_back_with_reasons(int phase)
    {
        var state = Baking(phase);

        var during = _plan.Apply(state, new HealthEvaluated(Breach));
        var atEnd = _plan.Apply(state, new BakeCompleted(Breach));

        foreach (var t in new[] { during, atEnd })
        {
            Assert.Equal(RolloutStatus.RollingBack, t.State.Status);
            Assert.Equal((ExposureLevel.None, ReadMode.Legacy), (t.State.Exposure, t.State.Reads));
            var rollback = Assert.IsType<RollBack>(Assert.Single(t.Commands));
            var reason = Assert.Single(rollback.Reasons);
            Assert.Contains($"phase '{_plan.Phases[phase].Name}'", reason, StringComparison.Ordinal);
            Assert.Contains("maxErrorRateIncrease", reason, StringComparison.Ordinal);
        }

        var done = _plan.Apply(during.State, new RollbackCompleted());
        Assert.Equal(RolloutStatus.RolledBack, done.State.Status);
        Assert.Equal(RolloutStatus.RolledBack, Assert.IsType<Finish>(Assert.Single(done.Commands)).Outcome);
    }

    [Fact]
    public void Healthy_or_insufficient_evaluation_during_a_bake_changes_nothing()
    {
        var state = Baking(1);

        foreach (var verdict in new[] { Healthy, Insufficient })
        {
            var t = _plan.Apply(state, new HealthEvaluated(verdict));
            Assert.True(t.Accepted);
            Assert.Equal(state, t.State);
            Assert.Empty(t.Commands);
        }
    }

    [Fact]
    public void Insufficient_data_extends_the_bake_then_halts()
    {
        var state = Baking(1);
        for (var i = 1; i <= _plan.MaxBakeExtensions; i++)
        {
            var t = _plan.Apply(state, new BakeCompleted(Insufficient));
            Assert.Equal(new Bake(_plan.ExtendBakeBy, i), Assert.Single(t.Commands));
            Assert.Equal((RolloutStatus.Baking, 1), (t.State.Status, t.State.PhaseIndex));
            state = t.State;
        }

        var halted = _plan.Apply(state, new BakeCompleted(Insufficient));

        Assert.Equal(RolloutStatus.Halted, halted.State.Status);
        Assert.Equal(ExposureLevel.FromPercent(1), halted.State.Exposure);
        Assert.Contains("insufficient data", Assert.IsType<Finish>(Assert.Single(halted.Commands)).Reasons[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Extensions_reset_when_the_next_phase_starts()
    {
        var state = _plan.Apply(Baking(0), new BakeCompleted(Insufficient)).State;

        var next = _plan.Apply(state, new BakeCompleted(Healthy)).State;

        Assert.Equal((1, 0), (next.PhaseIndex, next.BakeExtensions));
    }

    [Fact]
    public void Rejected_approval_rolls_back()
    {
        var t = _plan.Apply(AwaitingApproval(), new ApprovalAnswered(false, "bo", "p95 looks odd"));

        Assert.Equal(RolloutStatus.RollingBack, t.State.Status);
        Assert.Contains("rejected by bo: p95 looks odd", Assert.IsType<RollBack>(Assert.Single(t.Commands)).Reasons[0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(TimeoutAction.Rollback, RolloutStatus.RollingBack)]
    [InlineData(TimeoutAction.Halt, RolloutStatus.Halted)]
    public void Approval_timeout_follows_the_phase_action(TimeoutAction action, RolloutStatus expected)
    {
        var spec = SpecFixtures.Spec(n => n["phases"]![1]!["approval"]!["onTimeout"] = action.ToString().ToLowerInvariant());
        var plan = PhasePlan.FromSpec(spec);
        var state = plan.Apply(plan.Apply(Baking(0, plan), new BakeCompleted(Healthy)).State, new BakeCompleted(Healthy)).State;

        var t = plan.Apply(state, new ApprovalTimedOut());

        Assert.Equal(expected, t.State.Status);
        Assert.Contains("timed out after PT4H", string.Join(" ", t.State.Reasons), StringComparison.Ordinal);
        Assert.Equal(expected == RolloutStatus.Halted ? ExposureLevel.FromPercent(1) : ExposureLevel.None, t.State.Exposure);
    }

    [Fact]
    public void Pause_holds_and_resume_bakes_the_phase_again()
    {
        var paused = _plan.Apply(Baking(1), new Pause());
        var refusedWhilePaused = _plan.Apply(paused.State, new BakeCompleted(Healthy));
        var resumed = _plan.Apply(paused.State, new RolloutEvent.Resume());

        Assert.Equal((RolloutStatus.Paused, RolloutStatus.Baking), (paused.State.Status, paused.State.PausedFrom));
        Assert.False(refusedWhilePaused.Accepted);
        Assert.Equal(RolloutStatus.Baking, resumed.State.Status);
        Assert.Equal(new Bake(TimeSpan.FromMinutes(30), 0), Assert.Single(resumed.Commands));
    }

    [Fact]
    public void Pause_while_awaiting_approval_resumes_to_awaiting_approval()
    {
        var paused = _plan.Apply(AwaitingApproval(), new Pause()).State;

        var resumed = _plan.Apply(paused, new RolloutEvent.Resume());

        Assert.Equal(RolloutStatus.AwaitingApproval, resumed.State.Status);
        Assert.Equal(new AwaitApproval(TimeSpan.FromHours(4)), Assert.Single(resumed.Commands));
    }

    [Fact]
    public void A_breach_while_paused_still_rolls_back()
    {
        var paused = _plan.Apply(Baking(1), new Pause()).State;

        Assert.Equal(RolloutStatus.RollingBack, _plan.Apply(paused, new HealthEvaluated(Breach)).State.Status);
    }

    [Fact]
    public void Manual_rollback_is_accepted_in_every_live_state()
    {
        var live = new[]
        {
            RolloutState.Initial, Baking(0), Baking(2), AwaitingApproval(), _plan.Apply(Baking(1), new Pause()).State,
        };

        Assert.All(live, state =>
        {
            var t = _plan.Apply(state, new RollbackRequested("ops", "customer complaint"));
            Assert.Equal(RolloutStatus.RollingBack, t.State.Status);
            Assert.Contains("rolled back by ops", Assert.IsType<RollBack>(Assert.Single(t.Commands)).Reasons[0], StringComparison.Ordinal);
        });
    }

    [Fact]
    public void Skip_bake_only_where_the_phase_allows_it()
    {
        var spec = SpecFixtures.Spec(n => n["phases"]![1]!["allowSkipBake"] = true);
        var plan = PhasePlan.FromSpec(spec);

        var allowed = plan.Apply(Baking(1, plan), new SkipBake());
        var refused = plan.Apply(Baking(0, plan), new SkipBake());

        Assert.Equal(new EndBakeNow(), Assert.Single(allowed.Commands));
        Assert.False(refused.Accepted);
        Assert.Contains("allowSkipBake", refused.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Events_that_do_not_fit_the_state_are_refused_with_a_reason()
    {
        var cases = new (RolloutState State, RolloutEvent Event)[]
        {
            (RolloutState.Initial, new BakeCompleted(Healthy)),
            (Baking(1), new ApprovalAnswered(true, "ana", null)),
            (Baking(1), new RolloutEvent.Resume()),
            (AwaitingApproval(), new BakeCompleted(Healthy)),
            (_plan.Apply(Baking(1), new RollbackRequested("ops", null)).State, new Pause()),
            (Completed(), new RollbackRequested("ops", null)),
            (Completed(), new Start()),
        };

        Assert.All(cases, c =>
        {
            var t = _plan.Apply(c.State, c.Event);
            Assert.False(t.Accepted);
            Assert.Equal(c.State, t.State);
            Assert.Empty(t.Commands);
            Assert.False(string.IsNullOrWhiteSpace(t.Refusal));
        });
    }

    private RolloutState Step(RolloutState state, RolloutEvent @event, List<string> applied)
    {
        var t = _plan.Apply(state, @event);
        Assert.True(t.Accepted, t.Refusal);
        applied.AddRange(t.Commands.OfType<ApplyPhase>().Select(a => a.Phase.Name));
        return t.State;
    }

    private RolloutState Baking(int phase) => Baking(phase, _plan);

    private static RolloutState Baking(int phase, PhasePlan plan)
    {
        var state = plan.Apply(RolloutState.Initial, new Start()).State;
        while (state.PhaseIndex < phase)
        {
            state = plan.Apply(state, new BakeCompleted(Healthy)).State;
            if (state.Status == RolloutStatus.AwaitingApproval)
            {
                state = plan.Apply(state, new ApprovalAnswered(true, "ana", null)).State;
            }
        }

        return state;
    }

    private RolloutState AwaitingApproval() => _plan.Apply(Baking(1), new BakeCompleted(Healthy)).State;

    private RolloutState Completed() => _plan.Apply(Baking(2), new BakeCompleted(Healthy)).State;
}
