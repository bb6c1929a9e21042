using System.Data.Common;
using Rollout.Core.DataPath;
using Rollout.Core.Exposure;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Gate;

/// <summary>Which path serves a request.</summary>
public enum RoutePath
{
    /// <summary>The legacy code and store.</summary>
    Legacy,

    /// <summary>The new feature path.</summary>
    New,
}

/// <summary>The rollout's exposure as stored with it; changed only in one transaction by the orchestration.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Phase">Current phase name (empty before the start).</param>
/// <param name="Exposure">Exposure level.</param>
/// <param name="Reads">Read mode.</param>
/// <param name="Generation">Incremented by every change, so that caches can tell states apart.</param>
public sealed record ExposureState(string Feature, string Phase, ExposureLevel Exposure, ReadMode Reads, long Generation)
{
    /// <summary>The state of a feature that has no rollout yet: nobody exposed, reads legacy.</summary>
    /// <param name="feature">Feature key.</param>
    public static ExposureState Initial(string feature) => new(feature, string.Empty, ExposureLevel.None, ReadMode.Legacy, 0);
}

/// <summary>A gate decision for one subject.</summary>
/// <param name="Path">Path to take.</param>
/// <param name="State">The exposure state the decision was made on.</param>
public readonly record struct GateDecision(RoutePath Path, ExposureState State);

/// <summary>How a gated write ended.</summary>
public enum GateWriteOutcome
{
    /// <summary>The subject is not exposed; the legacy path served the request.</summary>
    Legacy,

    /// <summary>The new path's transaction committed.</summary>
    Committed,

    /// <summary>The new path threw; its transaction rolled back and the legacy path served the request.</summary>
    FellBackOnError,

    /// <summary>The new path ran past the gate timeout; its transaction rolled back and the legacy path served the request.</summary>
    FellBackOnTimeout,
}

/// <summary>The result of a gated write.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="Decision">The decision it was made on.</param>
/// <param name="Error">The new path's failure, when it fell back.</param>
/// <param name="Duration">Time spent, both paths included.</param>
public sealed record GateWriteResult(GateWriteOutcome Outcome, GateDecision Decision, Exception? Error, TimeSpan Duration);

/// <summary>The result of a gated read: the legacy row, or the target document, and what a shadow comparison found.</summary>
/// <param name="ServedBy">Which store served the read.</param>
/// <param name="Row">The source row (legacy or fallback), null when the target served or the row does not exist.</param>
/// <param name="Document">The target document when the target served.</param>
/// <param name="ShadowMatch">Shadow mode: whether the target matched the translated row; null when not compared (not sampled, or the change is still in flight to the target).</param>
/// <param name="FallbackReason">Live mode: why the source served an exposed subject.</param>
public sealed record GateReadResult(RoutePath ServedBy, SourceRow? Row, TargetDocument? Document, bool? ShadowMatch, string? FallbackReason);

/// <summary>A measured event, as the health evaluation reads it back.</summary>
/// <param name="Timestamp">When it ended.</param>
/// <param name="Feature">Feature key.</param>
/// <param name="Phase">Phase in force.</param>
/// <param name="ExposureBuckets">Exposure in force, in buckets.</param>
/// <param name="Kind">write, read, shadow, lag…</param>
/// <param name="Path">legacy or new.</param>
/// <param name="Outcome">ok, error, timeout, match, mismatch…</param>
/// <param name="DurationMs">Latency in milliseconds.</param>
public sealed record TelemetryEvent(DateTimeOffset Timestamp, string Feature, string Phase, int ExposureBuckets, string Kind, string Path, string Outcome, double DurationMs);

/// <summary>Reads and changes the stored exposure state.</summary>
public interface IExposureStateStore
{
    /// <summary>The current state (the initial state when none is stored).</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<ExposureState> GetStateAsync(string feature, CancellationToken cancellationToken);

    /// <summary>Sets phase, exposure and read mode in one transaction and records the change; returns the new state.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="phase">Phase name.</param>
    /// <param name="exposure">Exposure.</param>
    /// <param name="reads">Read mode.</param>
    /// <param name="reason">Why (phase entered, rollback…), kept in the history.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<ExposureState> SetStateAsync(string feature, string phase, ExposureLevel exposure, ReadMode reads, string reason, CancellationToken cancellationToken);
}

/// <summary>One transaction of the new path on the source store.</summary>
public interface IGateUnitOfWork : IAsyncDisposable
{
    /// <summary>The connection the new path writes with.</summary>
    DbConnection Connection { get; }

    /// <summary>The transaction every write of the new path must join.</summary>
    DbTransaction Transaction { get; }

    /// <summary>Records, inside the transaction, that the subject took the new path, and the source version its writes reached.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="subjectId">Subject.</param>
    /// <param name="state">Exposure state the decision was made on.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task RecordExposureAsync(string feature, string subjectId, ExposureState state, CancellationToken cancellationToken);

    /// <summary>Commits everything.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    Task CommitAsync(CancellationToken cancellationToken);
}

/// <summary>The source-store side of the gate.</summary>
public interface IGateStore
{
    /// <summary>Starts a transaction for the new path.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IGateUnitOfWork> BeginAsync(CancellationToken cancellationToken);

    /// <summary>The source version of the subject's last committed new-path write, or null.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="subjectId">Subject.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<long?> GetLastWriteVersionAsync(string feature, string subjectId, CancellationToken cancellationToken);
}

/// <summary>What one reconciliation found, for health evaluation.</summary>
/// <param name="Timestamp">When the run ended.</param>
/// <param name="Feature">Feature key.</param>
/// <param name="Compared">Keys compared.</param>
/// <param name="Drifted">Keys that drifted.</param>
/// <param name="FullPass">The run covered the whole table.</param>
/// <param name="OldestDriftAge">Age of the oldest drift still unresolved after the run, null when none.</param>
public sealed record DriftSample(DateTimeOffset Timestamp, string Feature, long Compared, long Drifted, bool FullPass, TimeSpan? OldestDriftAge);

/// <summary>Where measured events go (on the embedded default, a queryable local table).</summary>
public interface ITelemetrySink
{
    /// <summary>Records an event without blocking the caller.</summary>
    /// <param name="event">The event.</param>
    void Record(TelemetryEvent @event);

    /// <summary>Records the result of a reconciliation.</summary>
    /// <param name="sample">The sample.</param>
    void RecordDrift(DriftSample sample);
}
