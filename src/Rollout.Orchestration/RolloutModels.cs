using Rollout.Core.Exposure;
using Rollout.Core.Health;
using Rollout.Core.Plan;
using Rollout.Core.Spec;

namespace Rollout.Orchestration;

/// <summary>One phase as the orchestration carries it (durations already scaled).</summary>
/// <param name="Name">Phase name.</param>
/// <param name="ExposureBuckets">Exposure in buckets of 100,000.</param>
/// <param name="Reads">Read mode.</param>
/// <param name="Bake">Bake duration.</param>
/// <param name="ApprovalTimeout">Approval timeout, null when the phase asks for none.</param>
/// <param name="OnApprovalTimeout">What an unanswered approval does.</param>
/// <param name="AllowSkipBake">Whether an operator may cut the bake short.</param>
public sealed record PhaseInput(string Name, int ExposureBuckets, ReadMode Reads, TimeSpan Bake, TimeSpan? ApprovalTimeout, TimeoutAction OnApprovalTimeout, bool AllowSkipBake);

/// <summary>
/// The input of <see cref="RolloutOrchestrator"/>: the whole plan (so that a rollout in flight never depends on
/// a spec file that changed since), and, after the first phase, what the previous generation carried over.
/// </summary>
/// <param name="Version">The orchestration's input version (see <see cref="RolloutOrchestrator.CurrentVersion"/>).</param>
/// <param name="Feature">Feature key.</param>
/// <param name="Phases">Phases in order.</param>
/// <param name="Budgets">Health budgets.</param>
/// <param name="EvaluateEvery">Health evaluation interval during a bake or a wait.</param>
/// <param name="HealthLookback">How far back an evaluation during a bake looks (the end-of-bake verdict covers the whole phase).</param>
/// <param name="ExtendBakeBy">Length of one bake extension on insufficient data.</param>
/// <param name="MaxBakeExtensions">Extensions before the rollout halts.</param>
/// <param name="TimeScale">How much faster than the spec this rollout runs (1 in production).</param>
/// <param name="Carry">State carried across generations; null on the first.</param>
/// <param name="EvaluationsPerGeneration">Health evaluations in one generation before it continues as new in the middle of a phase (keeps history small).</param>
public sealed record RolloutInput(
    int Version,
    string Feature,
    IReadOnlyList<PhaseInput> Phases,
    HealthBudgets Budgets,
    TimeSpan EvaluateEvery,
    TimeSpan HealthLookback,
    TimeSpan ExtendBakeBy,
    int MaxBakeExtensions,
    double TimeScale,
    RolloutCarry? Carry = null,
    int EvaluationsPerGeneration = RolloutOrchestrator.EvaluationsPerGeneration)
{
    /// <summary>Builds the input of a validated spec.</summary>
    /// <param name="spec">The spec.</param>
    /// <param name="timeScale">Divides every duration of the spec (600 turns an hour into 6 s); 1 in production.</param>
    /// <param name="minimumInterval">The shortest health interval after scaling (default 100 ms).</param>
    /// <param name="minimumLookback">
    /// The shortest window an evaluation during a bake looks at (default 1 s): scaled windows of a fraction of a
    /// second hold too few requests for a stable p95.
    /// </param>
    public static RolloutInput FromSpec(RolloutSpec spec, double timeScale = 1, TimeSpan? minimumInterval = null, TimeSpan? minimumLookback = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!(timeScale >= 1) || double.IsInfinity(timeScale))
        {
            throw new ArgumentOutOfRangeException(nameof(timeScale), timeScale, "The time scale must be a finite number of at least 1 (1 runs the spec's durations as written).");
        }

        var plan = PhasePlan.FromSpec(spec);
        TimeSpan Scale(TimeSpan d) => TimeSpan.FromTicks((long)(d.Ticks / timeScale));
        var interval = Scale(plan.EvaluateEvery);
        var floor = minimumInterval ?? TimeSpan.FromMilliseconds(100);
        if (interval < floor)
        {
            interval = floor;
        }

        var lookback = interval * 3;
        if (lookback < (minimumLookback ?? TimeSpan.FromSeconds(1)))
        {
            lookback = minimumLookback ?? TimeSpan.FromSeconds(1);
        }

        var phases = plan.Phases
            .Select(p => new PhaseInput(p.Name, p.Exposure.Buckets, p.Reads, Scale(p.Bake), p.ApprovalTimeout is { } t ? Scale(t) : null, p.OnApprovalTimeout, p.AllowSkipBake))
            .ToArray();
        return new RolloutInput(
            RolloutOrchestrator.CurrentVersion,
            spec.Feature,
            phases,
            HealthBudgets.From(spec.Budgets),
            interval,
            lookback,
            Scale(plan.ExtendBakeBy),
            plan.MaxBakeExtensions,
            timeScale);
    }

    /// <summary>The core's plan of this input.</summary>
    public PhasePlan ToPlan() => new(
        Feature,
        [.. Phases.Select((p, i) => new PlannedPhase(i, p.Name, new ExposureLevel(p.ExposureBuckets), p.Reads, p.Bake, p.ApprovalTimeout, p.OnApprovalTimeout, p.AllowSkipBake))],
        ExtendBakeBy,
        MaxBakeExtensions,
        EvaluateEvery);
}

/// <summary>The core's rollout state in a serializable shape.</summary>
/// <param name="Status">Status.</param>
/// <param name="PhaseIndex">Current phase, -1 before the start.</param>
/// <param name="ExposureBuckets">Exposure in force.</param>
/// <param name="Reads">Read mode in force.</param>
/// <param name="BakeExtensions">Extensions used in the current phase.</param>
/// <param name="PausedFrom">Status to return to on resume.</param>
/// <param name="Reasons">Why the rollout rolled back or halted.</param>
public sealed record RolloutStateRecord(RolloutStatus Status, int PhaseIndex, int ExposureBuckets, ReadMode Reads, int BakeExtensions, RolloutStatus? PausedFrom, IReadOnlyList<string> Reasons)
{
    /// <summary>From the core's state.</summary>
    /// <param name="state">The state.</param>
    public static RolloutStateRecord From(RolloutState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new(state.Status, state.PhaseIndex, state.Exposure.Buckets, state.Reads, state.BakeExtensions, state.PausedFrom, state.Reasons);
    }

    /// <summary>To the core's state.</summary>
    public RolloutState ToState() => new(Status, PhaseIndex, new ExposureLevel(ExposureBuckets), Reads, BakeExtensions, PausedFrom, Reasons);
}

/// <summary>What one generation of the orchestration hands to the next (ContinueAsNew at each phase).</summary>
/// <param name="State">The rollout state, already in the next phase.</param>
/// <param name="StartedAt">When the rollout started.</param>
/// <param name="Snapshot">The status snapshot counter.</param>
/// <param name="VerdictSnapshot">The snapshot of the latest verdict.</param>
/// <param name="LastVerdict">The latest verdict.</param>
/// <param name="History">The most recent history entries.</param>
/// <param name="Baseline">A window of the legacy path at partial exposure, for judging at 100 %.</param>
/// <param name="Generation">How many times the orchestration continued as new.</param>
/// <param name="PreviousPhaseStart">When the phase that just ended started.</param>
/// <param name="LastCommand">The answer to the latest operator command (its sender may still be looking for it).</param>
/// <param name="RecentCommands">The answers to the last few commands.</param>
/// <param name="Journal">Journal entries not yet written (written by the next generation).</param>
/// <param name="Resume">Set when a generation ended inside a phase (a long bake or wait): where to pick it up.</param>
/// <param name="JournalSequence">The next journal sequence number.</param>
public sealed record RolloutCarry(
    RolloutStateRecord State,
    DateTimeOffset StartedAt,
    long Snapshot,
    long VerdictSnapshot,
    VerdictView? LastVerdict,
    IReadOnlyList<HistoryEntry> History,
    TimeWindow? Baseline,
    int Generation,
    DateTimeOffset? PreviousPhaseStart = null,
    CommandAnswer? LastCommand = null,
    IReadOnlyList<CommandAnswer>? RecentCommands = null,
    IReadOnlyList<RolloutJournalEntry>? Journal = null,
    ResumePoint? Resume = null,
    long JournalSequence = 0);

/// <summary>Where a phase stood when its generation continued as new in the middle of it.</summary>
/// <param name="Waiting">What it was waiting for, until when.</param>
/// <param name="PhaseStart">When the phase's exposure was applied.</param>
/// <param name="NextEvaluation">When the next health evaluation is due.</param>
public sealed record ResumePoint(WaitingFor Waiting, DateTimeOffset PhaseStart, DateTimeOffset NextEvaluation);

/// <summary>A time window.</summary>
/// <param name="From">Start (inclusive).</param>
/// <param name="To">End (exclusive).</param>
public sealed record TimeWindow(DateTimeOffset From, DateTimeOffset To);

/// <summary>One line of the rollout's history.</summary>
/// <param name="At">When (orchestration time).</param>
/// <param name="Kind">phase, verdict, approval, command, refused, rollback, reconcile, finish.</param>
/// <param name="Phase">Phase name.</param>
/// <param name="Detail">What happened.</param>
public sealed record HistoryEntry(DateTimeOffset At, string Kind, string Phase, string Detail);

/// <summary>A health verdict as the status and the history show it.</summary>
/// <param name="Kind">healthy, breach or insufficientData.</param>
/// <param name="At">When it was given.</param>
/// <param name="Phase">In which phase.</param>
/// <param name="Final">True for the end-of-bake verdict, false for one during the bake.</param>
/// <param name="Summary">The evidence in one line, for people.</param>
/// <param name="Figures">The evidence.</param>
/// <param name="Breaches">Each broken budget with observed and allowed values.</param>
/// <param name="Reason">Why the data was insufficient.</param>
/// <param name="Samples">Samples seen, for insufficient data.</param>
/// <param name="Required">Samples needed, for insufficient data.</param>
public sealed record VerdictView(string Kind, DateTimeOffset At, string Phase, bool Final, string Summary, HealthFigures Figures, IReadOnlyList<BreachView> Breaches, string? Reason, long Samples = 0, long Required = 0)
{
    /// <summary>The view of a core verdict.</summary>
    /// <param name="verdict">The verdict.</param>
    /// <param name="at">When.</param>
    /// <param name="phase">Phase name.</param>
    /// <param name="final">End-of-bake verdict.</param>
    public static VerdictView From(HealthVerdict verdict, DateTimeOffset at, string phase, bool final)
    {
        ArgumentNullException.ThrowIfNull(verdict);
        var summary = verdict.Figures.ToString();

        // JSON has no infinity: a latency beyond the histogram's last bucket is carried as the largest double.
        var figures = verdict.Figures with { CandidateP95Ms = Finite(verdict.Figures.CandidateP95Ms), ReferenceP95Ms = Finite(verdict.Figures.ReferenceP95Ms) };
        return verdict switch
        {
            HealthVerdict.Breach b => new VerdictView("breach", at, phase, final, summary, figures,
                [.. b.Breaches.Select(x => new BreachView(x.Budget, Finite(x.Observed)!.Value, x.Allowed, x.Detail))], null),
            HealthVerdict.InsufficientData i => new VerdictView("insufficientData", at, phase, final, summary, figures, [], i.Reason, i.Samples, i.Required),
            _ => new VerdictView("healthy", at, phase, final, summary, figures, [], null),
        };
    }

    private static double? Finite(double? value) => value is { } v && double.IsInfinity(v) ? (v > 0 ? double.MaxValue : double.MinValue) : value;

    /// <summary>The core verdict this view shows.</summary>
    public HealthVerdict ToVerdict() => Kind switch
    {
        "breach" => new HealthVerdict.Breach([.. Breaches.Select(b => new BudgetBreach(b.Budget, b.Observed, b.Allowed, b.Detail))], Figures),
        "insufficientData" => new HealthVerdict.InsufficientData(Reason ?? "insufficient data", Samples, Required, Figures),
        _ => new HealthVerdict.Healthy(Figures),
    };
}

/// <summary>A broken budget.</summary>
/// <param name="Budget">Budget name.</param>
/// <param name="Observed">Observed value.</param>
/// <param name="Allowed">Allowed value.</param>
/// <param name="Detail">For people.</param>
public sealed record BreachView(string Budget, double Observed, double Allowed, string Detail);

/// <summary>What the orchestration is waiting for.</summary>
/// <param name="Kind">bake, approval, paused or nothing.</param>
/// <param name="Until">Until when (null when paused).</param>
/// <param name="Extension">For a bake: 0, or the n-th extension.</param>
public sealed record WaitingFor(string Kind, DateTimeOffset? Until, int Extension = 0);

/// <summary>How the orchestration answered an operator command.</summary>
/// <param name="Id">The command's id.</param>
/// <param name="Command">approve, reject, pause, resume, rollback, skip-bake.</param>
/// <param name="Accepted">False when refused.</param>
/// <param name="Message">What happened or why it was refused.</param>
public sealed record CommandAnswer(string Id, string Command, bool Accepted, string Message);

/// <summary>
/// The custom status of a rollout: where it is and why, without reading logs. <see cref="Snapshot"/> grows with
/// every change; an approval names the snapshot its approver looked at.
/// </summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Status">pending, baking, awaitingApproval, paused, rollingBack, completed, rolledBack, halted.</param>
/// <param name="Phase">Current phase name.</param>
/// <param name="PhaseIndex">Current phase index (0-based).</param>
/// <param name="PhaseCount">Number of phases.</param>
/// <param name="ExposurePercent">Exposure in force.</param>
/// <param name="Reads">Read mode in force.</param>
/// <param name="Snapshot">This snapshot's id.</param>
/// <param name="LastVerdict">The latest health verdict.</param>
/// <param name="Waiting">What the rollout waits for.</param>
/// <param name="Reasons">Why it rolled back or halted.</param>
/// <param name="LastCommand">The answer to the latest operator command.</param>
/// <param name="RecentCommands">The answers to the last few commands, newest last.</param>
/// <param name="History">Recent history, oldest first (the journal keeps all of it).</param>
/// <param name="StartedAt">When the rollout started.</param>
/// <param name="TimeScale">How much faster than the spec this rollout runs.</param>
/// <param name="Generation">How many times the orchestration continued as new (at each phase, and within long phases).</param>
public sealed record RolloutStatusView(
    string Feature,
    string Status,
    string Phase,
    int PhaseIndex,
    int PhaseCount,
    decimal ExposurePercent,
    ReadMode Reads,
    long Snapshot,
    VerdictView? LastVerdict,
    WaitingFor Waiting,
    IReadOnlyList<string> Reasons,
    CommandAnswer? LastCommand,
    IReadOnlyList<CommandAnswer> RecentCommands,
    IReadOnlyList<HistoryEntry> History,
    DateTimeOffset StartedAt,
    double TimeScale,
    int Generation = 0);

/// <summary>An operator command sent to a running rollout as an external event.</summary>
/// <param name="Id">Unique id chosen by the sender, echoed in <see cref="RolloutStatusView.LastCommand"/>.</param>
/// <param name="Command">approve, reject, pause, resume, rollback, skip-bake.</param>
/// <param name="By">Who.</param>
/// <param name="Comment">Optional comment.</param>
/// <param name="Snapshot">For approve: the status snapshot the approver looked at.</param>
public sealed record OperatorCommand(string Id, string Command, string By, string? Comment = null, long? Snapshot = null);

/// <summary>How a rollout ended.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Outcome">completed, rolledBack or halted.</param>
/// <param name="Phase">The phase it ended in.</param>
/// <param name="ExposurePercent">Exposure left in force.</param>
/// <param name="Reasons">Why (empty on completion).</param>
/// <param name="Reconciliation">The reconciliation triggered by a rollback.</param>
public sealed record RolloutResult(string Feature, string Outcome, string Phase, decimal ExposurePercent, IReadOnlyList<string> Reasons, string? Reconciliation);

/// <summary>Input of <see cref="ApplyExposureActivity"/>.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Phase">Phase name.</param>
/// <param name="ExposureBuckets">Exposure.</param>
/// <param name="Reads">Read mode.</param>
/// <param name="Reason">Why, kept in the state history.</param>
public sealed record ApplyExposureInput(string Feature, string Phase, int ExposureBuckets, ReadMode Reads, string Reason);

/// <summary>Input of <see cref="EvaluateHealthActivity"/>.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Window">The window judged.</param>
/// <param name="Baseline">A window of the legacy path at partial exposure, used when the legacy path has too little traffic.</param>
/// <param name="CandidateExposed">True when the phase exposes subjects.</param>
/// <param name="Budgets">The budgets.</param>
/// <param name="Phase">Phase name.</param>
/// <param name="Final">End-of-bake verdict.</param>
public sealed record EvaluateHealthInput(string Feature, TimeWindow Window, TimeWindow? Baseline, bool CandidateExposed, HealthBudgets Budgets, string Phase, bool Final);

/// <summary>Input of <see cref="TriggerReconciliationActivity"/>.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Reason">Why.</param>
public sealed record TriggerReconciliationInput(string Feature, string Reason);

/// <summary>Operator command names and external event names.</summary>
public static class RolloutEvents
{
    /// <summary>The external event that carries approve and reject.</summary>
    public const string Approval = "Approval";

    /// <summary>The external event that carries pause, resume, rollback and skip-bake.</summary>
    public const string Operator = "Operator";

    /// <summary>Approve the phase waiting for approval.</summary>
    public const string Approve = "approve";

    /// <summary>Reject the phase waiting for approval (rolls back).</summary>
    public const string Reject = "reject";

    /// <summary>Hold progress.</summary>
    public const string Pause = "pause";

    /// <summary>Continue after a pause.</summary>
    public const string Resume = "resume";

    /// <summary>Roll back now.</summary>
    public const string Rollback = "rollback";

    /// <summary>End the bake now (where the phase allows it).</summary>
    public const string SkipBake = "skip-bake";

    /// <summary>The event name a command travels on.</summary>
    /// <param name="command">The command.</param>
    public static string EventFor(string command) => command switch
    {
        Approve or Reject => Approval,
        Pause or Resume or Rollback or SkipBake => Operator,
        _ => throw new ArgumentException($"Unknown command '{command}'. Use one of: {Approve}, {Reject}, {Pause}, {Resume}, {Rollback}, {SkipBake}.", nameof(command)),
    };
}
