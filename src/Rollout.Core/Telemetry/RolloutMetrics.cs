using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Rollout.Core;

/// <summary>
/// The OpenTelemetry instruments of Rollout (meter and activity source <c>Rollout</c>). Every gate decision,
/// dual-write batch, repair and phase change is measured here and tagged with the feature and, where it
/// applies, the phase and exposure, so that exported metrics correlate with the flag state.
/// </summary>
public sealed class RolloutMetrics : IDisposable
{
    /// <summary>Meter and activity source name to subscribe to.</summary>
    public const string Name = "Rollout";

    /// <summary>
    /// How long a count of open dead letters is reported after it was taken. Past it this process reports none for the
    /// feature: another instance may have taken over the change feed timer and counted since, and a stale count would
    /// keep the backlog alert firing (9 min is the longest change feed invocation).
    /// </summary>
    public static readonly TimeSpan OpenDeadLettersReportedFor = TimeSpan.FromMinutes(10);

    private readonly Meter _meter;
    private readonly Counter<long> _decisions;
    private readonly Histogram<double> _decisionDuration;
    private readonly Counter<long> _changes;
    private readonly Histogram<double> _batchDuration;
    private readonly Counter<long> _shadowComparisons;
    private readonly Counter<long> _reconciledKeys;
    private readonly Histogram<double> _driftRate;
    private readonly Histogram<double> _driftAge;
    private readonly Counter<long> _phaseChanges;
    private readonly Counter<long> _verdicts;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (long Open, long CountedAt)> _openDeadLetters = new(StringComparer.Ordinal);

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/> (or a private meter when null).</summary>
    /// <param name="meterFactory">The host's meter factory.</param>
    /// <param name="time">Clock that ages the last count of open dead letters (the system clock when null).</param>
    public RolloutMetrics(IMeterFactory? meterFactory = null, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        _decisions = _meter.CreateCounter<long>("rollout.gate.decisions", "{decision}", "Gate decisions by path and outcome.");
        _decisionDuration = _meter.CreateHistogram<double>("rollout.gate.duration", "ms", "Time to serve a request through the gate, by path and outcome.");
        _changes = _meter.CreateCounter<long>("rollout.dualwrite.changes", "{change}", "Changes handled by the dual-write processor, by result.");
        _batchDuration = _meter.CreateHistogram<double>("rollout.dualwrite.batch.duration", "ms", "Time to read, translate and apply one batch.");
        _shadowComparisons = _meter.CreateCounter<long>("rollout.shadow.comparisons", "{comparison}", "Shadow reads compared, by match.");
        _reconciledKeys = _meter.CreateCounter<long>("rollout.reconcile.keys", "{key}", "Keys compared by reconciliation, by drift kind (none for all compared).");
        _driftRate = _meter.CreateHistogram<double>("rollout.reconcile.drift_rate", "1", "Drifted keys / compared keys of each reconciliation run.");
        _driftAge = _meter.CreateHistogram<double>("rollout.reconcile.drift_age", "s", "Age of the oldest drift still unresolved after a reconciliation run.");
        _phaseChanges = _meter.CreateCounter<long>("rollout.phase.changes", "{change}", "Exposure changes made by the rollout orchestration (phase entered, rollback), by phase and exposure.");
        _verdicts = _meter.CreateCounter<long>("rollout.health.verdicts", "{verdict}", "Health verdicts given during rollouts, by phase and verdict.");
        _meter.CreateObservableGauge("rollout.dualwrite.dead_letters.open", ObserveOpenDeadLetters, "{dead_letter}", "Open (unresolved) dead letters of the feature, as last counted by this process.");
    }

    /// <summary>Activity source for traces.</summary>
    public static ActivitySource Activities { get; } = new(Name);

    /// <summary>Records a gate decision.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="phase">Phase name.</param>
    /// <param name="exposurePercent">Exposure in force.</param>
    /// <param name="path">legacy or new.</param>
    /// <param name="outcome">ok, error, fallback, timeout…</param>
    /// <param name="kind">read or write.</param>
    /// <param name="duration">How long it took.</param>
    public void RecordDecision(string feature, string phase, double exposurePercent, string path, string outcome, string kind, TimeSpan duration)
    {
        var tags = new TagList
        {
            { "rollout.feature", feature },
            { "rollout.phase", phase },
            { "rollout.exposure", exposurePercent },
            { "rollout.path", path },
            { "rollout.outcome", outcome },
            { "rollout.kind", kind },
        };
        _decisions.Add(1, tags);
        _decisionDuration.Record(duration.TotalMilliseconds, tags);
    }

    /// <summary>Records a dual-write batch.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="read">Changes read.</param>
    /// <param name="applied">Applied.</param>
    /// <param name="stale">Skipped by the version guard.</param>
    /// <param name="deadLettered">Dead-lettered.</param>
    /// <param name="duration">Batch time.</param>
    public void RecordBatch(string feature, int read, int applied, int stale, int deadLettered, TimeSpan duration)
    {
        _changes.Add(applied, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.result", "applied"));
        _changes.Add(stale, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.result", "stale"));
        _changes.Add(deadLettered, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.result", "dead-lettered"));
        _batchDuration.Record(duration.TotalMilliseconds, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.batch.size", read));
    }

    /// <summary>
    /// Sets the <c>rollout.dualwrite.dead_letters.open</c> gauge of a feature: the open dead letters just counted. The
    /// gauge reports this value at each collection for <see cref="OpenDeadLettersReportedFor"/>, then nothing.
    /// </summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="open">Open dead letters.</param>
    public void RecordOpenDeadLetters(string feature, long open) => _openDeadLetters[feature] = (open, _time.GetTimestamp());

    /// <summary>Records a shadow comparison.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="phase">Phase name.</param>
    /// <param name="match">Whether the target matched the translated source.</param>
    public void RecordShadowComparison(string feature, string phase, bool match) =>
        _shadowComparisons.Add(1, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.phase", phase), new("rollout.match", match));

    /// <summary>Records a reconciliation run: keys by drift kind, drift rate and the oldest drift's age.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="depth">quick or deep.</param>
    /// <param name="compared">Keys compared.</param>
    /// <param name="driftedByKind">Drifted keys by kind.</param>
    /// <param name="oldestDriftAge">Age of the oldest unresolved drift.</param>
    public void RecordReconciliation(string feature, string depth, long compared, IReadOnlyDictionary<string, long> driftedByKind, TimeSpan? oldestDriftAge)
    {
        ArgumentNullException.ThrowIfNull(driftedByKind);
        var featureTag = new KeyValuePair<string, object?>("rollout.feature", feature);
        var depthTag = new KeyValuePair<string, object?>("rollout.depth", depth);
        _reconciledKeys.Add(compared, featureTag, depthTag, new("rollout.drift", "none"));
        foreach (var (kind, count) in driftedByKind)
        {
            _reconciledKeys.Add(count, featureTag, depthTag, new("rollout.drift", kind));
        }

        var drifted = driftedByKind.Values.Sum();
        _driftRate.Record(compared == 0 ? 0 : (double)drifted / compared, featureTag, depthTag);
        _driftAge.Record(oldestDriftAge?.TotalSeconds ?? 0, featureTag);
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<long>> ObserveOpenDeadLetters() =>
        [.. _openDeadLetters
            .Where(e => _time.GetElapsedTime(e.Value.CountedAt) <= OpenDeadLettersReportedFor)
            .Select(e => new Measurement<long>(e.Value.Open, new KeyValuePair<string, object?>("rollout.feature", e.Key)))];

    /// <summary>Records an exposure change made by the orchestration.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="phase">Phase name.</param>
    /// <param name="exposurePercent">Exposure after the change.</param>
    /// <param name="reads">Read mode after the change.</param>
    /// <param name="rollback">True for a rollback.</param>
    public void RecordPhaseChange(string feature, string phase, double exposurePercent, string reads, bool rollback) =>
        _phaseChanges.Add(1, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.phase", phase), new("rollout.exposure", exposurePercent),
            new("rollout.reads", reads), new("rollout.rollback", rollback));

    /// <summary>Records a health verdict.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="phase">Phase name.</param>
    /// <param name="verdict">healthy, breach or insufficientData.</param>
    /// <param name="final">End-of-bake verdict.</param>
    public void RecordVerdict(string feature, string phase, string verdict, bool final) =>
        _verdicts.Add(1, new KeyValuePair<string, object?>("rollout.feature", feature), new("rollout.phase", phase), new("rollout.verdict", verdict), new("rollout.final", final));
}
