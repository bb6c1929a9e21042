using System.Diagnostics;
using Rollout.Core.DataPath;
using Rollout.Core.Exposure;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Gate;

/// <summary>Gate settings.</summary>
public sealed record GateOptions
{
    /// <summary>Budget of the new path's transaction; past it, the transaction rolls back and legacy serves.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a read exposure state is trusted before it is read again.</summary>
    public TimeSpan CacheTtl { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Share of shadow reads that are compared (0..1).</summary>
    public double ShadowSampleRatio { get; init; } = 1.0;

    /// <summary>From a validated spec.</summary>
    /// <param name="spec">The spec.</param>
    /// <param name="cacheTtl">State cache lifetime.</param>
    public static GateOptions From(RolloutSpec spec, TimeSpan? cacheTtl = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new GateOptions
        {
            Timeout = IsoDuration.Parse(spec.Gate.Timeout),
            ShadowSampleRatio = spec.Gate.ShadowSampleRatio,
            CacheTtl = cacheTtl ?? TimeSpan.FromSeconds(1),
        };
    }
}

/// <summary>
/// The application-facing gate. <see cref="DecideAsync"/> says which path a subject takes (sticky bucketing on a
/// cached exposure state). <see cref="WriteAsync"/> runs the new path's writes in ONE source transaction with
/// the gate timeout, records the exposure in the same transaction, and on error or timeout rolls everything
/// back and serves the request through the legacy path: never a partial write, and a subject counts as
/// exposed only if its new-path write committed. <see cref="ReadAsync"/> serves reads by the phase's read
/// mode. Every decision is measured (OpenTelemetry and the telemetry sink).
/// </summary>
public sealed class RolloutGate : IDisposable
{
    private readonly string _feature;
    private readonly ExposureBucketer _bucketer;
    private readonly DocumentTranslator _translator;
    private readonly IExposureStateStore _states;
    private readonly IGateStore _gateStore;
    private readonly ISourceReader _source;
    private readonly ITargetStore _target;
    private readonly ICheckpointStore _checkpoints;
    private readonly string _feedName;
    private readonly ITelemetrySink _telemetry;
    private readonly RolloutMetrics? _metrics;
    private readonly TimeProvider _time;
    private readonly GateOptions _options;
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile CachedState? _cached;
    private long _shadowReads;

    /// <summary>Creates the gate of one feature.</summary>
    /// <param name="spec">Validated spec.</param>
    /// <param name="translator">Its compiled mapping (shadow comparisons).</param>
    /// <param name="states">Exposure state store.</param>
    /// <param name="gateStore">Source-side transactions.</param>
    /// <param name="source">Source reads.</param>
    /// <param name="target">Target reads.</param>
    /// <param name="checkpoints">Dual-write checkpoints (read-your-writes in live mode).</param>
    /// <param name="feedName">Name of the dual-write checkpoint.</param>
    /// <param name="telemetry">Telemetry sink.</param>
    /// <param name="time">Clock.</param>
    /// <param name="options">Settings.</param>
    /// <param name="metrics">Instruments, or null.</param>
    public RolloutGate(
        RolloutSpec spec,
        DocumentTranslator translator,
        IExposureStateStore states,
        IGateStore gateStore,
        ISourceReader source,
        ITargetStore target,
        ICheckpointStore checkpoints,
        string feedName,
        ITelemetrySink telemetry,
        TimeProvider time,
        GateOptions options,
        RolloutMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _feature = spec.Feature;
        _bucketer = new ExposureBucketer(spec.Feature, spec.Salt);
        _translator = translator;
        _states = states;
        _gateStore = gateStore;
        _source = source;
        _target = target;
        _checkpoints = checkpoints;
        _feedName = feedName;
        _telemetry = telemetry;
        _time = time;
        _options = options;
        _metrics = metrics;
    }

    /// <summary>The path a subject takes now. In-memory except when the cached state has expired.</summary>
    /// <param name="subjectId">Subject id.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async ValueTask<GateDecision> DecideAsync(string subjectId, CancellationToken cancellationToken = default)
    {
        var state = await StateAsync(cancellationToken);
        return new GateDecision(_bucketer.IsExposed(subjectId, state.Exposure) ? RoutePath.New : RoutePath.Legacy, state);
    }

    /// <inheritdoc />
    public void Dispose() => _refresh.Dispose();

    /// <summary>Forgets the cached exposure state (the next decision reads it again).</summary>
    public void Invalidate() => _cached = null;

    /// <summary>
    /// Serves a write. An exposed subject runs <paramref name="newPath"/> inside one source transaction that
    /// also records the exposure; on error or timeout the transaction rolls back and <paramref name="legacyPath"/>
    /// serves the request. A subject that is not exposed goes straight to <paramref name="legacyPath"/>.
    /// An error of the legacy path is the caller's and is rethrown after it is measured.
    /// </summary>
    /// <param name="subjectId">Subject id.</param>
    /// <param name="newPath">The new feature's writes; every command must use the unit of work's transaction and honour the token.</param>
    /// <param name="legacyPath">The legacy path.</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    public async Task<GateWriteResult> WriteAsync(
        string subjectId,
        Func<IGateUnitOfWork, CancellationToken, Task> newPath,
        Func<CancellationToken, Task> legacyPath,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(newPath);
        ArgumentNullException.ThrowIfNull(legacyPath);
        var started = _time.GetTimestamp();
        var decision = await DecideAsync(subjectId, cancellationToken);
        using var activity = RolloutMetrics.Activities.StartActivity("rollout.gate.write");
        activity?.SetTag("rollout.feature", _feature);
        activity?.SetTag("rollout.phase", decision.State.Phase);
        activity?.SetTag("rollout.exposure", (double)decision.State.Exposure.Percent);
        activity?.SetTag("rollout.path", decision.Path == RoutePath.New ? "new" : "legacy");
        if (decision.Path == RoutePath.Legacy)
        {
            await RunLegacyAsync(decision, "write", started, legacyPath, cancellationToken);
            return new GateWriteResult(GateWriteOutcome.Legacy, decision, null, _time.GetElapsedTime(started));
        }

        var (outcome, error) = await TryNewPathAsync(subjectId, decision.State, newPath, cancellationToken);
        var newPathTime = _time.GetElapsedTime(started);
        Measure(decision.State, "write", RoutePath.New, outcome switch
        {
            GateWriteOutcome.Committed => "ok",
            GateWriteOutcome.FellBackOnTimeout => "timeout",
            _ => "error",
        }, newPathTime);
        activity?.SetTag("rollout.write.outcome", outcome.ToString());
        if (outcome != GateWriteOutcome.Committed)
        {
            activity?.AddEvent(new System.Diagnostics.ActivityEvent("rollout.fallback"));
            await RunLegacyAsync(decision, "write-fallback", _time.GetTimestamp(), legacyPath, cancellationToken);
        }

        return new GateWriteResult(outcome, decision, error, _time.GetElapsedTime(started));
    }

    /// <summary>
    /// Serves a read by the phase's read mode: legacy reads the source; shadow reads both, serves the
    /// source and compares the translated row with the target document (sampled); live serves the target to
    /// exposed subjects unless the target has not yet applied the subject's last write (then the source serves,
    /// so a user always reads their own writes).
    /// </summary>
    /// <param name="subjectId">Subject id.</param>
    /// <param name="key">Source key of the row to read.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<GateReadResult> ReadAsync(string subjectId, SourceKey key, CancellationToken cancellationToken = default)
    {
        var started = _time.GetTimestamp();
        var decision = await DecideAsync(subjectId, cancellationToken);
        var state = decision.State;
        using var activity = RolloutMetrics.Activities.StartActivity("rollout.gate.read");
        activity?.SetTag("rollout.feature", _feature);
        activity?.SetTag("rollout.phase", state.Phase);
        activity?.SetTag("rollout.exposure", (double)state.Exposure.Percent);
        activity?.SetTag("rollout.reads", state.Reads.ToString().ToLowerInvariant());
        switch (state.Reads)
        {
            case ReadMode.Shadow:
                {
                    var row = await _source.GetAsync(key, cancellationToken);
                    bool? match = null;
                    if (SampleShadow())
                    {
                        match = await CompareAsync(key, row, cancellationToken);
                        if (match is { } compared)
                        {
                            _metrics?.RecordShadowComparison(_feature, state.Phase, compared);
                            _telemetry.Record(Event(state, "shadow", RoutePath.New, compared ? "match" : "mismatch", 0));
                        }
                    }

                    Measure(state, "read", RoutePath.Legacy, "ok", _time.GetElapsedTime(started));
                    return new GateReadResult(RoutePath.Legacy, row?.Row, null, match, null);
                }

            case ReadMode.Live when decision.Path == RoutePath.New:
                {
                    var (fallback, wrote) = await LiveFallbackReasonAsync(subjectId, cancellationToken);
                    TargetDocument? document = null;
                    SnapshotRow? row = null;
                    if (fallback is null)
                    {
                        document = await _target.GetAsync(key, cancellationToken);
                        if (document is null)
                        {
                            fallback = "the target has no document for this key yet";
                        }
                        else if (wrote)
                        {
                            // The feed carries only the latest change per key: a checkpoint past the subject's write does not
                            // prove that this key's document holds it (a later write by someone else may not be applied
                            // yet). A subject who wrote is served the target only where it is current for the key.
                            row = await _source.GetAsync(key, cancellationToken);
                            if (row is not null ? document.SourceVersion < row.Version : !document.IsTombstone)
                            {
                                fallback = $"the target holds version {document.SourceVersion} of this key, the source version {row?.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(deleted)"}";
                            }
                        }
                    }

                    if (fallback is null)
                    {
                        Measure(state, "read", RoutePath.New, "ok", _time.GetElapsedTime(started));
                        return new GateReadResult(RoutePath.New, null, document!.IsTombstone ? null : document, null, null);
                    }

                    row ??= await _source.GetAsync(key, cancellationToken);
                    Measure(state, "read", RoutePath.New, "fallback", _time.GetElapsedTime(started));
                    return new GateReadResult(RoutePath.Legacy, row?.Row, null, null, fallback);
                }

            default:
                {
                    var row = await _source.GetAsync(key, cancellationToken);
                    Measure(state, "read", RoutePath.Legacy, "ok", _time.GetElapsedTime(started));
                    return new GateReadResult(RoutePath.Legacy, row?.Row, null, null, null);
                }
        }
    }

    private async Task<(GateWriteOutcome Outcome, Exception? Error)> TryNewPathAsync(
        string subjectId, ExposureState state, Func<IGateUnitOfWork, CancellationToken, Task> newPath, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        IGateUnitOfWork? unit = null;
        try
        {
            unit = await _gateStore.BeginAsync(linked.Token);
            var work = newPath(unit, linked.Token);
            try
            {
                await work.WaitAsync(linked.Token);
            }
            catch (OperationCanceledException) when (!work.IsCompleted)
            {
                // Give the new path a moment to observe the cancellation, so that the rollback below does not
                // run under a command still in flight; then roll back regardless.
                await Task.WhenAny(work, Task.Delay(_options.Timeout, _time, CancellationToken.None));
                throw;
            }

            await unit.RecordExposureAsync(_feature, subjectId, state, linked.Token);
            linked.Token.ThrowIfCancellationRequested();
            await unit.CommitAsync(linked.Token);
            return (GateWriteOutcome.Committed, null);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return (GateWriteOutcome.FellBackOnTimeout, new TimeoutException($"The new path did not commit within {_options.Timeout}.", ex));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return (GateWriteOutcome.FellBackOnError, ex);
        }
        finally
        {
            // Disposing an uncommitted unit of work rolls the transaction back.
            if (unit is not null)
            {
                await unit.DisposeAsync();
            }
        }
    }

    private async Task RunLegacyAsync(GateDecision decision, string kind, long started, Func<CancellationToken, Task> legacyPath, CancellationToken cancellationToken)
    {
        try
        {
            await legacyPath(cancellationToken);
            Measure(decision.State, kind, RoutePath.Legacy, "ok", _time.GetElapsedTime(started));
        }
        catch (Exception)
        {
            Measure(decision.State, kind, RoutePath.Legacy, "error", _time.GetElapsedTime(started));
            throw;
        }
    }

    private async Task<(string? Reason, bool Wrote)> LiveFallbackReasonAsync(string subjectId, CancellationToken cancellationToken)
    {
        var lastWrite = await _gateStore.GetLastWriteVersionAsync(_feature, subjectId, cancellationToken);
        if (lastWrite is null)
        {
            return (null, false);
        }

        var applied = await _checkpoints.GetAsync(_feedName, cancellationToken) ?? 0;
        return (applied >= lastWrite ? null : $"the target has applied version {applied}, the subject last wrote version {lastWrite}", true);
    }

    /// <summary>
    /// Compares the target with the translated source row. Null when the target simply has not caught up: the row's
    /// version is beyond the pipeline's checkpoint, so the change is in flight (lag, measured elsewhere), not drift.
    /// </summary>
    private async Task<bool?> CompareAsync(SourceKey key, SnapshotRow? row, CancellationToken cancellationToken)
    {
        // The checkpoint first: a change the pipeline applies after this read shows in the document read next.
        var applied = await _checkpoints.GetAsync(_feedName, cancellationToken) ?? 0;
        var document = await _target.GetAsync(key, cancellationToken);
        if (row is null)
        {
            return document is null || document.IsTombstone;
        }

        if (document is null || document.IsTombstone || document.SourceVersion < row.Version)
        {
            return row.Version > applied ? null : false;
        }

        if (document.SourceVersion > row.Version)
        {
            return null; // A newer change landed between the two reads: nothing to compare the target with.
        }

        var translated = _translator.Translate(row.Row);
        return translated.IsSuccess && translated.Document!.Hash == document.Hash;
    }

    private bool SampleShadow()
    {
        var ratio = _options.ShadowSampleRatio;
        if (ratio >= 1)
        {
            return true;
        }

        // Deterministic, evenly spread sampling: compare when n × ratio crosses a whole number.
        var n = Interlocked.Increment(ref _shadowReads);
        return Math.Floor(n * ratio) != Math.Floor((n - 1) * ratio);
    }

    private async ValueTask<ExposureState> StateAsync(CancellationToken cancellationToken)
    {
        var cached = _cached;
        var now = _time.GetTimestamp();
        if (cached is not null && _time.GetElapsedTime(cached.ReadAt, now) < _options.CacheTtl)
        {
            return cached.State;
        }

        // One refresher at a time; others keep deciding on the previous state meanwhile.
        if (cached is not null && !await _refresh.WaitAsync(0, cancellationToken))
        {
            return cached.State;
        }

        if (cached is null)
        {
            await _refresh.WaitAsync(cancellationToken);
        }

        try
        {
            var state = await _states.GetStateAsync(_feature, cancellationToken);
            _cached = new CachedState(state, _time.GetTimestamp());
            return state;
        }
        finally
        {
            _refresh.Release();
        }
    }

    private void Measure(ExposureState state, string kind, RoutePath path, string outcome, TimeSpan duration)
    {
        var pathName = path == RoutePath.New ? "new" : "legacy";
        _metrics?.RecordDecision(_feature, state.Phase, (double)state.Exposure.Percent, pathName, outcome, kind, duration);

        // The request's span carries what its first measurement says (a write that falls back is the new path's
        // error, as in the decision metric), so that a trace store can rebuild the health window's latencies.
        if (Activity.Current is { } span && span.Source == RolloutMetrics.Activities && span.GetTagItem("rollout.outcome") is null)
        {
            span.SetTag("rollout.kind", kind);
            span.SetTag("rollout.path", pathName);
            span.SetTag("rollout.outcome", outcome);
            span.SetTag("rollout.duration_ms", duration.TotalMilliseconds); // the span also covers a fallback; this is what was judged
            if (outcome is "error" or "timeout")
            {
                span.SetStatus(ActivityStatusCode.Error);
            }
        }

        _telemetry.Record(Event(state, kind, path, outcome, duration.TotalMilliseconds));
    }

    private TelemetryEvent Event(ExposureState state, string kind, RoutePath path, string outcome, double durationMs) =>
        new(_time.GetUtcNow(), _feature, state.Phase, state.Exposure.Buckets, kind, path == RoutePath.New ? "new" : "legacy", outcome, durationMs);

    private sealed record CachedState(ExposureState State, long ReadAt);
}
