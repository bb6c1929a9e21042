using System.Globalization;
using Rollout.Core.Exposure;
using Rollout.Core.Health;
using Rollout.Core.Spec;

namespace Rollout.Core.Plan;

/// <summary>Where a rollout stands.</summary>
public enum RolloutStatus
{
    /// <summary>Not started.</summary>
    Pending,

    /// <summary>A phase's exposure is set and the phase is being watched.</summary>
    Baking,

    /// <summary>The phase baked healthy and waits for a person.</summary>
    AwaitingApproval,

    /// <summary>An operator paused progress; exposure stays, health is still watched.</summary>
    Paused,

    /// <summary>Every phase passed.</summary>
    Completed,

    /// <summary>Exposure is being set to 0 and the stores reconciled.</summary>
    RollingBack,

    /// <summary>Undone: exposure 0, reads legacy.</summary>
    RolledBack,

    /// <summary>Stopped with exposure left where it was; needs a person.</summary>
    Halted,
}

/// <summary>One phase with its durations parsed.</summary>
/// <param name="Index">Position in the plan.</param>
/// <param name="Name">Phase name.</param>
/// <param name="Exposure">Exposure level.</param>
/// <param name="Reads">Read mode.</param>
/// <param name="Bake">Bake duration.</param>
/// <param name="ApprovalTimeout">Approval timeout, null when no approval is asked.</param>
/// <param name="OnApprovalTimeout">What an unanswered approval does.</param>
/// <param name="AllowSkipBake">Whether an operator may cut the bake short.</param>
public sealed record PlannedPhase(int Index, string Name, ExposureLevel Exposure, ReadMode Reads, TimeSpan Bake, TimeSpan? ApprovalTimeout, TimeoutAction OnApprovalTimeout, bool AllowSkipBake);

/// <summary>The state of one rollout. Immutable; transitions make new states.</summary>
/// <param name="Status">Status.</param>
/// <param name="PhaseIndex">Current phase, -1 before the start.</param>
/// <param name="Exposure">Exposure in force.</param>
/// <param name="Reads">Read mode in force.</param>
/// <param name="BakeExtensions">Extensions used in the current phase.</param>
/// <param name="PausedFrom">Status to return to on resume.</param>
/// <param name="Reasons">Why the rollout rolled back or halted.</param>
public sealed record RolloutState(
    RolloutStatus Status,
    int PhaseIndex,
    ExposureLevel Exposure,
    ReadMode Reads,
    int BakeExtensions,
    RolloutStatus? PausedFrom,
    IReadOnlyList<string> Reasons)
{
    /// <summary>The state before the start.</summary>
    public static RolloutState Initial { get; } = new(RolloutStatus.Pending, -1, ExposureLevel.None, ReadMode.Legacy, 0, null, []);

    /// <summary>True for Completed, RolledBack and Halted.</summary>
    public bool IsTerminal => Status is RolloutStatus.Completed or RolloutStatus.RolledBack or RolloutStatus.Halted;
}

/// <summary>Something that happened to a rollout.</summary>
public abstract record RolloutEvent
{
    private RolloutEvent()
    {
    }

    /// <summary>Begin the first phase.</summary>
    public sealed record Start : RolloutEvent;

    /// <summary>A health evaluation during a bake; only a breach changes anything.</summary>
    /// <param name="Verdict">The verdict.</param>
    public sealed record HealthEvaluated(HealthVerdict Verdict) : RolloutEvent;

    /// <summary>The bake's time is up (or was skipped) and this is the final verdict.</summary>
    /// <param name="Verdict">The verdict.</param>
    public sealed record BakeCompleted(HealthVerdict Verdict) : RolloutEvent;

    /// <summary>An operator asked to cut the bake short.</summary>
    public sealed record SkipBake : RolloutEvent;

    /// <summary>A person answered the approval.</summary>
    /// <param name="Approved">True to go on.</param>
    /// <param name="By">Who.</param>
    /// <param name="Comment">Optional comment.</param>
    public sealed record ApprovalAnswered(bool Approved, string By, string? Comment) : RolloutEvent;

    /// <summary>Nobody answered in time.</summary>
    public sealed record ApprovalTimedOut : RolloutEvent;

    /// <summary>Hold progress.</summary>
    public sealed record Pause : RolloutEvent;

    /// <summary>Continue after a pause.</summary>
    public sealed record Resume : RolloutEvent;

    /// <summary>An operator asked to roll back.</summary>
    /// <param name="By">Who.</param>
    /// <param name="Reason">Why.</param>
    public sealed record RollbackRequested(string By, string? Reason) : RolloutEvent;

    /// <summary>Exposure is 0, reads are legacy and reconciliation was triggered.</summary>
    public sealed record RollbackCompleted : RolloutEvent;
}

/// <summary>An effect the host must carry out after a transition, in order.</summary>
public abstract record RolloutCommand
{
    private RolloutCommand()
    {
    }

    /// <summary>Set exposure and read mode for a phase (one transaction, recorded).</summary>
    /// <param name="Phase">The phase.</param>
    public sealed record ApplyPhase(PlannedPhase Phase) : RolloutCommand;

    /// <summary>Watch the phase for this long, evaluating health periodically, then report <see cref="RolloutEvent.BakeCompleted"/>.</summary>
    /// <param name="Duration">How long.</param>
    /// <param name="Extension">0 for the phase's own bake, n for the n-th extension.</param>
    public sealed record Bake(TimeSpan Duration, int Extension) : RolloutCommand;

    /// <summary>End the running bake now and report its final verdict.</summary>
    public sealed record EndBakeNow : RolloutCommand;

    /// <summary>Wait for an approval event, at most this long.</summary>
    /// <param name="Timeout">How long.</param>
    public sealed record AwaitApproval(TimeSpan Timeout) : RolloutCommand;

    /// <summary>Set exposure 0 and reads legacy at once, trigger reconciliation, then report <see cref="RolloutEvent.RollbackCompleted"/>.</summary>
    /// <param name="Reasons">Why.</param>
    public sealed record RollBack(IReadOnlyList<string> Reasons) : RolloutCommand;

    /// <summary>The rollout has ended.</summary>
    /// <param name="Outcome">Completed, RolledBack or Halted.</param>
    /// <param name="Reasons">Why (empty on completion).</param>
    public sealed record Finish(RolloutStatus Outcome, IReadOnlyList<string> Reasons) : RolloutCommand;
}

/// <summary>The outcome of applying an event: a new state and commands, or a refusal with a reason.</summary>
/// <param name="Accepted">False when the event does not fit the state.</param>
/// <param name="State">The state after (unchanged when refused).</param>
/// <param name="Commands">Effects to carry out, in order.</param>
/// <param name="Refusal">Why the event was refused.</param>
public sealed record Transition(bool Accepted, RolloutState State, IReadOnlyList<RolloutCommand> Commands, string? Refusal);

/// <summary>
/// The pure state machine of a rollout. The durable orchestration is a thin shell around it: it feeds events
/// (timers, verdicts, operator commands) and carries out the commands it gets back.
/// </summary>
public sealed class PhasePlan
{
    /// <summary>Creates a plan.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="phases">Phases in order.</param>
    /// <param name="extendBakeBy">Length of one bake extension on insufficient data.</param>
    /// <param name="maxBakeExtensions">Extensions before the rollout halts.</param>
    /// <param name="evaluateEvery">Health evaluation interval during a bake.</param>
    public PhasePlan(string feature, IReadOnlyList<PlannedPhase> phases, TimeSpan extendBakeBy, int maxBakeExtensions, TimeSpan evaluateEvery)
    {
        ArgumentNullException.ThrowIfNull(phases);
        if (phases.Count == 0)
        {
            throw new ArgumentException("A plan needs at least one phase.", nameof(phases));
        }

        Feature = feature;
        Phases = phases;
        ExtendBakeBy = extendBakeBy;
        MaxBakeExtensions = maxBakeExtensions;
        EvaluateEvery = evaluateEvery;
    }

    /// <summary>Feature key.</summary>
    public string Feature { get; }

    /// <summary>Phases in order.</summary>
    public IReadOnlyList<PlannedPhase> Phases { get; }

    /// <summary>Length of one bake extension.</summary>
    public TimeSpan ExtendBakeBy { get; }

    /// <summary>Extensions allowed per phase.</summary>
    public int MaxBakeExtensions { get; }

    /// <summary>Health evaluation interval during a bake.</summary>
    public TimeSpan EvaluateEvery { get; }

    /// <summary>Builds the plan of a validated spec.</summary>
    /// <param name="spec">The spec.</param>
    public static PhasePlan FromSpec(RolloutSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var phases = spec.Phases.Select((p, i) => new PlannedPhase(
            i,
            p.Name,
            ExposureLevel.FromPercent(p.Exposure),
            p.Reads ?? (p.Exposure == 0 ? ReadMode.Shadow : ReadMode.Live),
            IsoDuration.Parse(p.Bake),
            p.Approval is { } a ? IsoDuration.Parse(a.Timeout) : null,
            p.Approval?.OnTimeout ?? TimeoutAction.Halt,
            p.AllowSkipBake)).ToArray();
        return new PhasePlan(spec.Feature, phases, IsoDuration.Parse(spec.Budgets.ExtendBakeBy), spec.Budgets.MaxBakeExtensions, IsoDuration.Parse(spec.Budgets.EvaluateEvery));
    }

    /// <summary>The longest a rollout can take if every phase bakes fully, is extended to the limit and waits for every approval.</summary>
    public TimeSpan WorstCaseDuration =>
        Phases.Aggregate(TimeSpan.Zero, (sum, p) => sum + p.Bake + (ExtendBakeBy * MaxBakeExtensions) + (p.ApprovalTimeout ?? TimeSpan.Zero));

    /// <summary>Applies an event.</summary>
    /// <param name="state">Current state.</param>
    /// <param name="event">What happened.</param>
    public Transition Apply(RolloutState state, RolloutEvent @event)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(@event);
        if (state.IsTerminal)
        {
            return Refuse(state, $"the rollout has already ended ({state.Status})");
        }

        return (state.Status, @event) switch
        {
            (RolloutStatus.Pending, RolloutEvent.Start) => EnterPhase(state, 0),
            (RolloutStatus.Pending, RolloutEvent.RollbackRequested r) => RollBack(state, [$"rolled back by {r.By} before the start{Suffix(r.Reason)}"]),
            (RolloutStatus.Pending, _) => Refuse(state, "the rollout has not started"),

            (RolloutStatus.RollingBack, RolloutEvent.RollbackCompleted) =>
                Accept(state with { Status = RolloutStatus.RolledBack, PausedFrom = null }, new RolloutCommand.Finish(RolloutStatus.RolledBack, state.Reasons)),
            (RolloutStatus.RollingBack, _) => Refuse(state, "a rollback is in progress"),

            (_, RolloutEvent.RollbackRequested r) => RollBack(state, [$"rolled back by {r.By} in phase '{Phases[state.PhaseIndex].Name}'{Suffix(r.Reason)}"]),
            (_, RolloutEvent.HealthEvaluated { Verdict: HealthVerdict.Breach b }) => RollBack(state, BreachReasons(state, b)),
            (_, RolloutEvent.HealthEvaluated) => Accept(state),

            (RolloutStatus.Baking, RolloutEvent.BakeCompleted c) => CompleteBake(state, c.Verdict),
            (RolloutStatus.Baking, RolloutEvent.SkipBake) => Phases[state.PhaseIndex].AllowSkipBake
                ? Accept(state, new RolloutCommand.EndBakeNow())
                : Refuse(state, $"phase '{Phases[state.PhaseIndex].Name}' does not allow skipping its bake (set \"allowSkipBake\": true in the spec)"),

            (RolloutStatus.AwaitingApproval, RolloutEvent.ApprovalAnswered { Approved: true }) => Advance(state),
            (RolloutStatus.AwaitingApproval, RolloutEvent.ApprovalAnswered a) =>
                RollBack(state, [$"approval of phase '{Phases[state.PhaseIndex].Name}' rejected by {a.By}{Suffix(a.Comment)}"]),
            (RolloutStatus.AwaitingApproval, RolloutEvent.ApprovalTimedOut) => ApprovalTimedOut(state),

            (RolloutStatus.Baking or RolloutStatus.AwaitingApproval, RolloutEvent.Pause) =>
                Accept(state with { Status = RolloutStatus.Paused, PausedFrom = state.Status }),
            (RolloutStatus.Paused, RolloutEvent.Resume) => Resume(state),
            (RolloutStatus.Paused, _) => Refuse(state, "the rollout is paused; resume it first"),

            (_, RolloutEvent.Resume) => Refuse(state, "the rollout is not paused"),
            (_, RolloutEvent.Pause) => Refuse(state, "only a baking or waiting rollout can be paused"),
            (_, RolloutEvent.ApprovalAnswered or RolloutEvent.ApprovalTimedOut) => Refuse(state, "the rollout is not waiting for an approval"),
            (_, RolloutEvent.SkipBake or RolloutEvent.BakeCompleted) => Refuse(state, "the rollout is not baking"),
            _ => Refuse(state, $"{@event.GetType().Name} does not apply while {state.Status}"),
        };
    }

    private Transition EnterPhase(RolloutState state, int index)
    {
        var phase = Phases[index];
        var next = state with
        {
            Status = RolloutStatus.Baking,
            PhaseIndex = index,
            Exposure = phase.Exposure,
            Reads = phase.Reads,
            BakeExtensions = 0,
            PausedFrom = null,
        };
        return Accept(next, new RolloutCommand.ApplyPhase(phase), new RolloutCommand.Bake(phase.Bake, 0));
    }

    private Transition CompleteBake(RolloutState state, HealthVerdict verdict)
    {
        var phase = Phases[state.PhaseIndex];
        switch (verdict)
        {
            case HealthVerdict.Breach breach:
                return RollBack(state, BreachReasons(state, breach));
            case HealthVerdict.InsufficientData insufficient when state.BakeExtensions < MaxBakeExtensions:
                var extension = state.BakeExtensions + 1;
                return Accept(state with { BakeExtensions = extension }, new RolloutCommand.Bake(ExtendBakeBy, extension));
            case HealthVerdict.InsufficientData insufficient:
                string[] reasons = [$"phase '{phase.Name}' halted: insufficient data after {MaxBakeExtensions} bake extension(s): {insufficient.Reason}"];
                return Accept(state with { Status = RolloutStatus.Halted, Reasons = reasons }, new RolloutCommand.Finish(RolloutStatus.Halted, reasons));
            default:
                return phase.ApprovalTimeout is { } timeout
                    ? Accept(state with { Status = RolloutStatus.AwaitingApproval }, new RolloutCommand.AwaitApproval(timeout))
                    : Advance(state);
        }
    }

    private Transition Advance(RolloutState state) =>
        state.PhaseIndex + 1 < Phases.Count
            ? EnterPhase(state, state.PhaseIndex + 1)
            : Accept(state with { Status = RolloutStatus.Completed }, new RolloutCommand.Finish(RolloutStatus.Completed, []));

    private Transition ApprovalTimedOut(RolloutState state)
    {
        var phase = Phases[state.PhaseIndex];
        var reason = string.Create(CultureInfo.InvariantCulture, $"approval of phase '{phase.Name}' timed out after {IsoDuration.Format(phase.ApprovalTimeout ?? TimeSpan.Zero)}");
        if (phase.OnApprovalTimeout == TimeoutAction.Rollback)
        {
            return RollBack(state, [reason]);
        }

        string[] reasons = [reason + "; halted with exposure left at " + state.Exposure];
        return Accept(state with { Status = RolloutStatus.Halted, Reasons = reasons }, new RolloutCommand.Finish(RolloutStatus.Halted, reasons));
    }

    private Transition Resume(RolloutState state)
    {
        var phase = Phases[state.PhaseIndex];
        var resumed = state with { Status = state.PausedFrom ?? RolloutStatus.Baking, PausedFrom = null };
        // A resumed phase is watched again for its whole bake (or asks again for approval): a pause is no shortcut.
        return resumed.Status == RolloutStatus.AwaitingApproval
            ? Accept(resumed, new RolloutCommand.AwaitApproval(phase.ApprovalTimeout ?? TimeSpan.Zero))
            : Accept(resumed with { BakeExtensions = 0 }, new RolloutCommand.Bake(phase.Bake, 0));
    }

    private static Transition RollBack(RolloutState state, IReadOnlyList<string> reasons) =>
        Accept(
            state with { Status = RolloutStatus.RollingBack, Exposure = ExposureLevel.None, Reads = ReadMode.Legacy, PausedFrom = null, Reasons = reasons },
            new RolloutCommand.RollBack(reasons));

    private string[] BreachReasons(RolloutState state, HealthVerdict.Breach breach) =>
        [.. breach.Breaches.Select(b => $"phase '{Phases[state.PhaseIndex].Name}' at {state.Exposure}: {b.Budget} broken: {b.Detail}")];

    private static string Suffix(string? text) => string.IsNullOrWhiteSpace(text) ? string.Empty : $": {text}";

    private static Transition Accept(RolloutState state, params RolloutCommand[] commands) => new(true, state, commands, null);

    private static Transition Refuse(RolloutState state, string reason) => new(false, state, [], reason);
}
