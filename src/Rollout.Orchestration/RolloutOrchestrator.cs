using System.Globalization;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Rollout.Core.Exposure;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Orchestration;

/// <summary>
/// One durable orchestration per rollout: a thin shell around the core's <see cref="PhasePlan"/>. It feeds the
/// plan events (durable timers, health verdicts from an activity, operator commands from external events) and
/// carries out the commands it gets back (set exposure, bake, wait for approval, roll back, finish). Each phase
/// runs in its own generation (ContinueAsNew), so that the history stays small and a new build takes over a
/// rollout in flight at the next phase boundary.
/// </summary>
/// <remarks>
/// Deterministic: time comes from the orchestration context, every effect is an activity, and nothing reads
/// the wall clock, random numbers, GUIDs, files or the environment.
/// </remarks>
public sealed class RolloutOrchestrator : TaskOrchestrator<RolloutInput, RolloutResult?>
{
    /// <summary>The input version this build writes. Older versions are run as written; newer ones are refused.</summary>
    public const int CurrentVersion = 1;

    /// <summary>
    /// The orchestration version the rollout is scheduled and continued with (Durable Task worker versioning): a worker
    /// of an older build leaves a newer rollout alone (it stays pending for a worker that knows it) instead of failing it.
    /// </summary>
    public const string OrchestrationVersion = "1.0";

    /// <summary>How many history entries the status keeps (the journal keeps them all); the status must stay small (16 KB).</summary>
    public const int HistoryLimit = 12;

    /// <summary>Longest detail kept in the status (the journal keeps it whole).</summary>
    public const int DetailLimit = 300;

    /// <summary>Default of <see cref="RolloutInput.EvaluationsPerGeneration"/>.</summary>
    public const int EvaluationsPerGeneration = 100;

    /// <summary>The orchestration instance id of a feature: one live rollout per feature.</summary>
    /// <param name="feature">Feature key.</param>
    public static string InstanceIdFor(string feature) => "rollout:" + feature;

    /// <inheritdoc />
    public override Task<RolloutResult?> RunAsync(TaskOrchestrationContext context, RolloutInput input)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        if (input.Version > CurrentVersion || input.Version < 1)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Rollout '{input.Feature}' was started by a build that writes orchestration version {input.Version}; this build runs versions 1 to {CurrentVersion}. Run it with that build (or a newer one)."));
        }

        return new RolloutRun(context, input).RunAsync();
    }
}

/// <summary>One generation of a rollout orchestration (one phase, or the rollback and end).</summary>
internal sealed class RolloutRun
{
    private static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(new RetryPolicy(5, TimeSpan.FromSeconds(1), 2, TimeSpan.FromSeconds(30)));
    private static readonly TaskOptions RollbackRetry = TaskOptions.FromRetryPolicy(new RetryPolicy(12, TimeSpan.FromSeconds(1), 2, TimeSpan.FromSeconds(30)));

    private readonly TaskOrchestrationContext _context;
    private readonly RolloutInput _input;
    private readonly PhasePlan _plan;
    private readonly List<HistoryEntry> _history;
    private readonly List<RolloutJournalEntry> _journal = [];
    private readonly Queue<RolloutCommand> _commands = new();
    private readonly DateTimeOffset _startedAt;
    private readonly int _generation;

    private RolloutState _state;
    private long _snapshot;
    private long _verdictSnapshot;
    private VerdictView? _lastVerdict;
    private TimeWindow? _baseline;
    private WaitingFor _waiting = new("nothing", null);
    private DateTimeOffset _phaseStart;
    private DateTimeOffset _nextEvaluation;
    private CommandAnswer? _lastCommand;
    private readonly List<CommandAnswer> _recentCommands;
    private long _journalSequence;
    private int _evaluations;
    private string? _reconciliation;
    private int _phasesApplied;
    private Task<OperatorCommand>? _approvalEvent;
    private Task<OperatorCommand>? _operatorEvent;

    public RolloutRun(TaskOrchestrationContext context, RolloutInput input)
    {
        _context = context;
        _input = input;
        _plan = input.ToPlan();
        var carry = input.Carry;
        _state = carry?.State.ToState() ?? RolloutState.Initial;
        _startedAt = carry?.StartedAt ?? Now;
        _snapshot = carry?.Snapshot ?? 0;
        _verdictSnapshot = carry?.VerdictSnapshot ?? 0;
        _lastVerdict = carry?.LastVerdict;
        _history = [.. carry?.History ?? []];
        _baseline = carry?.Baseline;
        _generation = carry?.Generation ?? 0;
        _lastCommand = carry?.LastCommand;
        _recentCommands = [.. carry?.RecentCommands ?? []];
        _journal.AddRange(carry?.Journal ?? []);
        _journalSequence = carry?.JournalSequence ?? 0;
    }

    private DateTimeOffset Now => new(DateTime.SpecifyKind(_context.CurrentUtcDateTime, DateTimeKind.Utc));

    private string PhaseName => _state.PhaseIndex >= 0 ? _plan.Phases[_state.PhaseIndex].Name : string.Empty;

    public async Task<RolloutResult?> RunAsync()
    {
        if (_input.Carry is null)
        {
            Enqueue(_plan.Apply(_state, new RolloutEvent.Start()));
        }
        else if (_input.Carry.Resume is { } resume)
        {
            // The previous generation stopped in the middle of this phase: carry on where it was.
            _waiting = resume.Waiting;
            _phaseStart = resume.PhaseStart;
            _nextEvaluation = resume.NextEvaluation;
            _phasesApplied = 1;
        }
        else
        {
            // The previous generation already moved the state into this phase; carry out its entry here.
            var phase = _plan.Phases[_state.PhaseIndex];
            _commands.Enqueue(new RolloutCommand.ApplyPhase(phase));
            _commands.Enqueue(new RolloutCommand.Bake(phase.Bake, 0));
        }

        while (true)
        {
            while (_commands.TryDequeue(out var command))
            {
                switch (command)
                {
                    case RolloutCommand.ApplyPhase when _phasesApplied > 0:
                        // Commands that arrived together with the one that moved the rollout here come first (this awaits
                        // only tasks already complete): a rollback sent with an approval wins over the next phase, and
                        // Enqueue has then dropped the rest of the phase entry.
                        await HandleArrivedCommandsAsync();
                        if (_state.Status is RolloutStatus.RollingBack or RolloutStatus.Completed or RolloutStatus.RolledBack or RolloutStatus.Halted)
                        {
                            break;
                        }

                        // Next phase: a fresh generation, so that history stays small and new code applies from here.
                        // Nothing is awaited between the decision and ContinueAsNew, so no command can arrive unseen; the
                        // journal entries still unwritten travel with the carry.
                        ContinueAsNew(null);
                        return null;
                    case RolloutCommand.ApplyPhase apply:
                        await ApplyPhaseAsync(apply.Phase);
                        break;
                    case RolloutCommand.Bake bake:
                        var until = Now + bake.Duration;
                        _waiting = new WaitingFor("bake", until, bake.Extension);
                        _nextEvaluation = Now + _input.EvaluateEvery;
                        if (bake.Extension > 0)
                        {
                            Record("extend", string.Create(CultureInfo.InvariantCulture, $"bake extended ({bake.Extension} of {_plan.MaxBakeExtensions}) until {until:O}: {_lastVerdict?.Reason}"));
                        }

                        break;
                    case RolloutCommand.EndBakeNow:
                        _waiting = _waiting with { Until = Now };
                        break;
                    case RolloutCommand.AwaitApproval approval:
                        _waiting = new WaitingFor("approval", Now + approval.Timeout);
                        Record("await", string.Create(CultureInfo.InvariantCulture, $"waiting for approval until {Now + approval.Timeout:O} (snapshot {_snapshot + 1})"));
                        break;
                    case RolloutCommand.RollBack rollBack:
                        await RollBackAsync(rollBack.Reasons);
                        break;
                    case RolloutCommand.Finish finish:
                        return await FinishAsync(finish);
                }
            }

            if (_state.Status == RolloutStatus.Paused)
            {
                _waiting = new WaitingFor("paused", null);
            }

            if (_evaluations >= _input.EvaluationsPerGeneration && !HasPendingCommand())
            {
                // A long bake or wait: continue as new in the middle of the phase, so that history stays small.
                ContinueAsNew(new ResumePoint(_waiting, _phaseStart, _nextEvaluation));
                return null;
            }

            PublishStatus();
            await FlushJournalAsync();
            await WaitForNextEventAsync();
        }
    }

    private void ContinueAsNew(ResumePoint? resume)
    {
        // An event that arrives in the same batch after this point goes to a waiter still open here, not to the next
        // generation (the SDK forwards only events nobody waits for): forward whatever such a waiter receives.
        ForwardLateEvent(_approvalEvent, RolloutEvents.Approval);
        ForwardLateEvent(_operatorEvent, RolloutEvents.Operator);
        _context.ContinueAsNew(new ContinueAsNewOptions
        {
            NewVersion = RolloutOrchestrator.OrchestrationVersion,
            NewInput = _input with
            {
                Version = RolloutOrchestrator.CurrentVersion,
                Carry = new RolloutCarry(
                    RolloutStateRecord.From(_state), _startedAt, _snapshot, _verdictSnapshot, _lastVerdict, _history, _baseline, _generation + 1,
                    resume is null ? _phaseStart : null, _lastCommand, _recentCommands, [.. _journal], resume, _journalSequence),
            },
        });
    }

    private void ForwardLateEvent(Task<OperatorCommand>? waiter, string eventName)
    {
        if (waiter is null || waiter.IsCompleted)
        {
            return;
        }

        _ = ForwardAsync(waiter, eventName);
    }

    private async Task ForwardAsync(Task<OperatorCommand> waiter, string eventName)
    {
        var command = await waiter;
        _context.SendEvent(_context.InstanceId, eventName, command);
    }

    private bool HasPendingCommand() => _approvalEvent is { IsCompleted: true } || _operatorEvent is { IsCompleted: true };

    /// <summary>
    /// Handles commands that arrived while an activity ran (their waiters completed meanwhile), before acting on
    /// what the activity returned: a rollback sent during an end-of-bake evaluation wins over the next phase.
    /// </summary>
    private async Task HandleArrivedCommandsAsync()
    {
        while (HasPendingCommand())
        {
            OperatorCommand command;
            if (_approvalEvent is { IsCompleted: true })
            {
                command = await _approvalEvent;
                _approvalEvent = null;
            }
            else
            {
                command = await _operatorEvent!;
                _operatorEvent = null;
            }

            Handle(command);
        }
    }

    private async Task ApplyPhaseAsync(PlannedPhase phase)
    {
        _phasesApplied++;
        if (_input.Carry?.PreviousPhaseStart is { } previousStart && phase.Index > 0 && _plan.Phases[phase.Index - 1].Exposure.Buckets < ExposureLevel.Full.Buckets)
        {
            // The previous phase's legacy traffic stands in for the legacy path once it has none (at 100 %).
            _baseline = new TimeWindow(previousStart, Now);
        }

        await CallAsync<long>(nameof(ApplyExposureActivity), new ApplyExposureInput(_input.Feature, phase.Name, phase.Exposure.Buckets, phase.Reads,
            string.Create(CultureInfo.InvariantCulture, $"phase '{phase.Name}' ({phase.Index + 1} of {_plan.Phases.Count}) entered")), Retry);
        _phaseStart = Now;
        Record("phase", string.Create(CultureInfo.InvariantCulture, $"phase '{phase.Name}' ({phase.Index + 1} of {_plan.Phases.Count}): exposure {phase.Exposure}, reads {Camel(phase.Reads)}, bake {phase.Bake}"));
    }

    private async Task RollBackAsync(IReadOnlyList<string> reasons)
    {
        _waiting = new WaitingFor("nothing", null);
        var reason = "rollback: " + string.Join("; ", reasons);

        // Exposure 0 and reads legacy first: everything else can wait.
        await CallAsync<long>(nameof(ApplyExposureActivity), new ApplyExposureInput(_input.Feature, PhaseName, 0, ReadMode.Legacy, reason), RollbackRetry);
        Record("rollback", "exposure 0%, reads legacy: " + string.Join("; ", reasons));
        PublishStatus();
        try
        {
            var outcome = await CallAsync<ReconciliationOutcome>(nameof(TriggerReconciliationActivity), new TriggerReconciliationInput(_input.Feature, reason), Retry);
            _reconciliation = outcome.Summary;
        }
        catch (TaskFailedException e)
        {
            // The rollback itself is done; a failed reconciliation is reported, and the scheduled one will run.
            _reconciliation = "reconciliation after rollback failed: " + e.FailureDetails.ErrorMessage;
        }

        Record("reconcile", _reconciliation);
        Enqueue(_plan.Apply(_state, new RolloutEvent.RollbackCompleted()));
    }

    private async Task<RolloutResult> FinishAsync(RolloutCommand.Finish finish)
    {
        _waiting = new WaitingFor("nothing", null);
        var outcome = Camel(finish.Outcome);
        Record("finish", finish.Reasons.Count == 0 ? outcome : outcome + ": " + string.Join("; ", finish.Reasons));
        Log.Ended(_context.CreateReplaySafeLogger<RolloutOrchestrator>(), _input.Feature, outcome, string.Join("; ", finish.Reasons));
        PublishStatus();
        await FlushJournalAsync();
        return new RolloutResult(_input.Feature, outcome, PhaseName, _state.Exposure.Percent, finish.Reasons, _reconciliation);
    }

    private async Task WaitForNextEventAsync()
    {
        var due = _nextEvaluation;
        if (_waiting.Until is { } until && until < due)
        {
            due = until;
        }

        using var cancelTimer = new CancellationTokenSource();
        var timer = _context.CreateTimer(due.UtcDateTime, cancelTimer.Token);
        _approvalEvent ??= _context.WaitForExternalEvent<OperatorCommand>(RolloutEvents.Approval);
        _operatorEvent ??= _context.WaitForExternalEvent<OperatorCommand>(RolloutEvents.Operator);
        var winner = await Task.WhenAny(timer, _approvalEvent, _operatorEvent);
        if (winner != timer)
        {
            // Synchronously: an orchestrator must only await tasks of its context (CancelAsync hops threads).
#pragma warning disable CA1849
            cancelTimer.Cancel();
#pragma warning restore CA1849
            OperatorCommand command;
            if (winner == _approvalEvent)
            {
                command = await _approvalEvent;
                _approvalEvent = null;
            }
            else
            {
                command = await _operatorEvent;
                _operatorEvent = null;
            }

            Handle(command);
            return;
        }

        var now = Now;
        var status = _state.Status;
        if (_waiting.Kind == "bake" && _waiting.Until is { } bakeEnd && now >= bakeEnd)
        {
            var verdict = await EvaluateAsync(new TimeWindow(_phaseStart, now), final: true);
            await HandleArrivedCommandsAsync();
            if (_state.Status == status && _commands.Count == 0)
            {
                Enqueue(_plan.Apply(_state, new RolloutEvent.BakeCompleted(verdict.ToVerdict())));
            }
        }
        else if (_waiting.Kind == "approval" && _waiting.Until is { } approvalEnd && now >= approvalEnd)
        {
            Enqueue(_plan.Apply(_state, new RolloutEvent.ApprovalTimedOut()));
        }
        else
        {
            var from = now - _input.HealthLookback;
            var verdict = await EvaluateAsync(new TimeWindow(from > _phaseStart ? from : _phaseStart, now), final: false);
            _evaluations++;
            _nextEvaluation = now + _input.EvaluateEvery;
            await HandleArrivedCommandsAsync();
            if (_state.Status is not (RolloutStatus.RollingBack or RolloutStatus.Completed or RolloutStatus.RolledBack or RolloutStatus.Halted))
            {
                Enqueue(_plan.Apply(_state, new RolloutEvent.HealthEvaluated(verdict.ToVerdict())));
            }
        }
    }

    private async Task<VerdictView> EvaluateAsync(TimeWindow window, bool final)
    {
        var phase = _plan.Phases[_state.PhaseIndex];
        VerdictView verdict;
        try
        {
            verdict = await CallAsync<VerdictView>(nameof(EvaluateHealthActivity),
                new EvaluateHealthInput(_input.Feature, window, _baseline, _state.Exposure.Buckets > 0, _input.Budgets, phase.Name, final), Retry);
        }
        catch (TaskFailedException e)
        {
            // No evidence is not a pass: treated as insufficient data (the bake extends, then halts).
            var empty = new Core.Health.HealthFigures(0, 0, null, 0, 0, null, "none", 0, 0);
            verdict = new VerdictView("insufficientData", window.To, phase.Name, final, "health evaluation failed", empty, [],
                "health evaluation failed: " + e.FailureDetails.ErrorMessage, 0, _input.Budgets.MinSamples);
        }

        // A verdict of another kind (or an end-of-bake verdict) makes earlier status snapshots stale for approvals.
        if (final || _lastVerdict is null || _lastVerdict.Kind != verdict.Kind || verdict.Kind == "breach")
        {
            _verdictSnapshot = _snapshot + 1;
        }

        _lastVerdict = verdict;
        if (final || verdict.Kind == "breach")
        {
            Record("verdict", string.Create(CultureInfo.InvariantCulture, $"{(final ? "end of bake" : "during bake")}: {verdict.Kind}: {Describe(verdict)}"));
        }

        return verdict;
    }

    private void Handle(OperatorCommand command)
    {
        if (_recentCommands.Exists(a => a.Id == command.Id))
        {
            return; // Sent again by a client that had not seen the answer yet: answered once.
        }

        RolloutEvent? @event = command.Command switch
        {
            RolloutEvents.Approve => new RolloutEvent.ApprovalAnswered(true, command.By, command.Comment),
            RolloutEvents.Reject => new RolloutEvent.ApprovalAnswered(false, command.By, command.Comment),
            RolloutEvents.Pause => new RolloutEvent.Pause(),
            RolloutEvents.Resume => new RolloutEvent.Resume(),
            RolloutEvents.Rollback => new RolloutEvent.RollbackRequested(command.By, command.Comment),
            RolloutEvents.SkipBake => new RolloutEvent.SkipBake(),
            _ => null,
        };
        if (@event is null)
        {
            Refuse(command, $"unknown command '{command.Command}'");
            return;
        }

        if (command.Command == RolloutEvents.Approve && _state.Status == RolloutStatus.AwaitingApproval)
        {
            if (command.Snapshot is not { } seen)
            {
                Refuse(command, "an approval must name the status snapshot its approver looked at (read the status, then approve with its snapshot)");
                return;
            }

            if (seen < _verdictSnapshot || seen > _snapshot)
            {
                Refuse(command, seen > _snapshot
                    ? string.Create(CultureInfo.InvariantCulture, $"snapshot {seen} does not exist yet (the latest is {_snapshot}); read the status again and approve on it")
                    : string.Create(CultureInfo.InvariantCulture, $"the approval was given on status snapshot {seen}, but a newer verdict came in snapshot {_verdictSnapshot} ({_lastVerdict?.Kind}: {_lastVerdict?.Summary}); read the status again and approve on snapshot {_snapshot} if it still holds"));
                return;
            }
        }

        var transition = _plan.Apply(_state, @event);
        if (!transition.Accepted)
        {
            Refuse(command, transition.Refusal ?? "refused");
            return;
        }

        var who = command.By + (string.IsNullOrWhiteSpace(command.Comment) ? string.Empty : $" ({command.Comment})");
        var detail = command.Command == RolloutEvents.Approve
            ? string.Create(CultureInfo.InvariantCulture, $"approved by {who} on snapshot {command.Snapshot}")
            : $"{command.Command} by {who}";
        Answer(new CommandAnswer(command.Id, command.Command, true, detail));
        if (command.Command == RolloutEvents.Approve && _lastVerdict is not null)
        {
            // The history keeps the evidence the approval stood on: the verdict in force (its kind unchanged since the
            // snapshot that first showed it, which the approver's snapshot is not older than) with its figures.
            detail += string.Create(CultureInfo.InvariantCulture,
                $"; evidence: {_lastVerdict.Kind} since snapshot {_verdictSnapshot}: {Describe(_lastVerdict)}");
        }

        Record(command.Command is RolloutEvents.Approve or RolloutEvents.Reject ? "approval" : "command", detail);
        Enqueue(transition);
    }

    private void Refuse(OperatorCommand command, string reason)
    {
        Answer(new CommandAnswer(command.Id, command.Command, false, Truncate(reason)));
        Log.CommandRefused(_context.CreateReplaySafeLogger<RolloutOrchestrator>(), _input.Feature, command.Command, command.By, reason);
        Record("refused", $"{command.Command} by {command.By} refused: {reason}");
    }

    private void Answer(CommandAnswer answer)
    {
        _lastCommand = answer;
        _recentCommands.Add(answer);
        if (_recentCommands.Count > 5)
        {
            _recentCommands.RemoveAt(0);
        }
    }

    private static string Truncate(string text) =>
        text.Length <= RolloutOrchestrator.DetailLimit ? text : string.Concat(text.AsSpan(0, RolloutOrchestrator.DetailLimit - 1), "…");

    private void Enqueue(Transition transition)
    {
        if (!transition.Accepted)
        {
            // Events from the orchestration itself always fit the state; a refusal here is a bug worth seeing.
            Record("refused", transition.Refusal ?? "refused");
            return;
        }

        _state = transition.State;
        if (_commands.Count > 0 && transition.Commands.Any(c => c is RolloutCommand.RollBack or RolloutCommand.Finish))
        {
            // A rollback (or the end) decided while a phase change was still queued wins: the phase is not entered.
            var keep = _commands.Where(c => c is not (RolloutCommand.ApplyPhase or RolloutCommand.Bake or RolloutCommand.EndBakeNow or RolloutCommand.AwaitApproval)).ToArray();
            _commands.Clear();
            foreach (var command in keep)
            {
                _commands.Enqueue(command);
            }
        }

        foreach (var command in transition.Commands)
        {
            _commands.Enqueue(command);
        }
    }

    private void Record(string kind, string detail)
    {
        var entry = new HistoryEntry(Now, kind, PhaseName, Truncate(detail));
        _history.Add(entry);
        if (_history.Count > RolloutOrchestrator.HistoryLimit)
        {
            _history.RemoveRange(0, _history.Count - RolloutOrchestrator.HistoryLimit);
        }

        _journal.Add(new RolloutJournalEntry(_input.Feature, entry.At, kind, entry.Phase, _state.Exposure.Percent, detail, _context.InstanceId, ++_journalSequence));
        Log.Transition(_context.CreateReplaySafeLogger<RolloutOrchestrator>(), _input.Feature, kind, entry.Phase, detail);
    }

    private void PublishStatus()
    {
        _snapshot++;
        _context.SetCustomStatus(new RolloutStatusView(
            _input.Feature,
            Camel(_state.Status),
            PhaseName,
            _state.PhaseIndex,
            _plan.Phases.Count,
            _state.Exposure.Percent,
            _state.Reads,
            _snapshot,
            _lastVerdict,
            _waiting,
            _state.Reasons,
            _lastCommand,
            _recentCommands,
            _history,
            _startedAt,
            _input.TimeScale,
            _generation));
    }

    private async Task FlushJournalAsync()
    {
        if (_journal.Count == 0)
        {
            return;
        }

        try
        {
            await CallAsync<int>(nameof(RecordJournalActivity), _journal.ToArray(), Retry);
            _journal.Clear();
        }
        catch (TaskFailedException)
        {
            // Kept for the next flush: the journal is a record, the rollout does not stop for it.
        }
    }

    private Task<T> CallAsync<T>(string activity, object input, TaskOptions options) => _context.CallActivityAsync<T>(activity, input, options);

    private static string Describe(VerdictView verdict) => verdict.Kind switch
    {
        "breach" => string.Join("; ", verdict.Breaches.Select(b => b.Detail)),
        "insufficientData" => verdict.Reason ?? verdict.Summary,
        _ => verdict.Summary,
    };

    private static string Camel<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.CamelCase.ConvertName(value.ToString());
}
