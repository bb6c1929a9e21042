using Rollout.Core.DataPath;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Reconciliation;

/// <summary>How deep a reconciliation looks.</summary>
public enum ReconcileDepth
{
    /// <summary>Keys, source versions and the target's write marker: no document bodies, cheap enough to run every few minutes.</summary>
    Quick,

    /// <summary>Also re-reads and re-translates every source row and compares content hashes (catches mapping bugs).</summary>
    Deep,
}

/// <summary>What is wrong with a key.</summary>
public enum DriftKind
{
    /// <summary>The source row has no live document in the target.</summary>
    Missing,

    /// <summary>The target holds a live document whose source row does not exist.</summary>
    Extra,

    /// <summary>Same version, different content (a mapping bug, or a write that bypassed the pipeline).</summary>
    Divergent,

    /// <summary>The target holds an older source version.</summary>
    Stale,

    /// <summary>The target holds a newer version than the source: impossible through the pipeline; needs a person.</summary>
    TargetAhead,

    /// <summary>The source row cannot be translated (it is also a dead letter); needs a person.</summary>
    Untranslatable,
}

/// <summary>One key as the source has it: key, version and, in deep mode, the translation.</summary>
/// <param name="Key">Source key.</param>
/// <param name="Version">Source version (0 before tracking).</param>
/// <param name="Hash">Deep mode: the content hash of the translated row; null in quick mode or when untranslatable.</param>
/// <param name="Errors">Deep mode: why the row could not be translated.</param>
/// <param name="Row">Deep mode: the row as read, translated again only where a repair needs its document.</param>
public sealed record SourceEntry(SourceKey Key, long Version, ContentHash? Hash = null, IReadOnlyList<TranslationError>? Errors = null, SourceRow? Row = null)
{
    /// <summary>True when translation was attempted and failed.</summary>
    public bool Untranslatable => Errors is { Count: > 0 };
}

/// <summary>One key as the target has it (no body).</summary>
/// <param name="Key">Source key.</param>
/// <param name="Version">Source version the document came from.</param>
/// <param name="IsTombstone">True for a delete.</param>
/// <param name="Hash">Content hash, null for a tombstone.</param>
/// <param name="Tampered">The document changed since the pipeline last wrote it (its write marker moved).</param>
public sealed record TargetEntry(SourceKey Key, long Version, bool IsTombstone, ContentHash? Hash, bool Tampered);

/// <summary>A difference found for one key.</summary>
/// <param name="Kind">What is wrong.</param>
/// <param name="Key">Source key.</param>
/// <param name="Source">The source side, null when the row does not exist.</param>
/// <param name="Target">The target side, null when there is no document (not even a tombstone).</param>
public sealed record Drift(DriftKind Kind, SourceKey Key, SourceEntry? Source, TargetEntry? Target);

/// <summary>
/// Classifies differences between a source stream and a target stream, both in key order (<see cref="SortKey"/>),
/// by merge join: one pass, constant memory, every key compared once.
/// </summary>
public static class DriftClassifier
{
    /// <summary>Compares two key-ordered streams.</summary>
    /// <param name="source">Source entries in key order.</param>
    /// <param name="target">Target entries in key order.</param>
    /// <param name="depth">Quick ignores content hashes; deep compares them.</param>
    /// <param name="compared">Called once per distinct key seen (for counts).</param>
    public static IEnumerable<Drift> Compare(IEnumerable<SourceEntry> source, IEnumerable<TargetEntry> target, ReconcileDepth depth, Action? compared = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        using var s = source.GetEnumerator();
        using var t = target.GetEnumerator();
        var hasS = s.MoveNext();
        var hasT = t.MoveNext();
        while (hasS || hasT)
        {
            var order = !hasS ? 1 : !hasT ? -1 : SortKey.Compare(s.Current.Key.Sort, t.Current.Key.Sort);
            compared?.Invoke();
            Drift? drift;
            if (order < 0)
            {
                drift = Classify(s.Current, null, depth);
                hasS = s.MoveNext();
            }
            else if (order > 0)
            {
                drift = Classify(null, t.Current, depth);
                hasT = t.MoveNext();
            }
            else
            {
                drift = Classify(s.Current, t.Current, depth);
                hasS = s.MoveNext();
                hasT = t.MoveNext();
            }

            if (drift is not null)
            {
                yield return drift;
            }
        }
    }

    /// <summary>Classifies one key; null when the two sides agree.</summary>
    /// <param name="source">Source side, null when the row does not exist.</param>
    /// <param name="target">Target side, null when there is no document.</param>
    /// <param name="depth">Comparison depth.</param>
    public static Drift? Classify(SourceEntry? source, TargetEntry? target, ReconcileDepth depth)
    {
        var key = source?.Key ?? target?.Key ?? throw new ArgumentException("At least one side is needed.");
        if (source is null)
        {
            return target is null || target.IsTombstone ? null : new Drift(DriftKind.Extra, key, null, target);
        }

        if (depth == ReconcileDepth.Deep && source.Untranslatable)
        {
            return new Drift(DriftKind.Untranslatable, key, source, target);
        }

        if (target is null)
        {
            return new Drift(DriftKind.Missing, key, source, null);
        }

        if (target.Version > source.Version)
        {
            return new Drift(DriftKind.TargetAhead, key, source, target);
        }

        if (target.Version < source.Version)
        {
            return new Drift(target.IsTombstone ? DriftKind.Missing : DriftKind.Stale, key, source, target);
        }

        if (target.IsTombstone)
        {
            // A tombstone at the version of a live row: the delete was recorded for a row that exists.
            return new Drift(DriftKind.Missing, key, source, target);
        }

        if (target.Tampered)
        {
            return new Drift(DriftKind.Divergent, key, source, target);
        }

        return depth == ReconcileDepth.Deep && source.Hash is { } hash && hash != target.Hash
            ? new Drift(DriftKind.Divergent, key, source, target)
            : null;
    }
}

/// <summary>What reconciliation does about a drift.</summary>
public enum RepairAction
{
    /// <summary>Write the translated source row (the source wins).</summary>
    Upsert,

    /// <summary>Write a tombstone (the source row is gone).</summary>
    Tombstone,

    /// <summary>Leave it for a person.</summary>
    Flag,

    /// <summary>Report-only mode: record, change nothing.</summary>
    Report,
}

/// <summary>The deterministic repair policy: the source wins; what the pipeline cannot decide is flagged.</summary>
public static class RepairPolicy
{
    /// <summary>Decides the action for a drift.</summary>
    /// <param name="drift">The drift.</param>
    /// <param name="mode">Auto repairs; report only records.</param>
    public static RepairAction Decide(Drift drift, RepairMode mode)
    {
        ArgumentNullException.ThrowIfNull(drift);
        if (drift.Kind is DriftKind.TargetAhead or DriftKind.Untranslatable)
        {
            return RepairAction.Flag;
        }

        if (mode == RepairMode.Report)
        {
            return RepairAction.Report;
        }

        return drift.Kind == DriftKind.Extra ? RepairAction.Tombstone : RepairAction.Upsert;
    }

    /// <summary>
    /// The version-guarded write that repairs a drift: the source row at its own version, or a tombstone at the
    /// target's version for an extra document. It is marked as a repair, so it replaces a document of the same
    /// version but never a newer one: a repair racing a live change cannot overwrite it.
    /// </summary>
    /// <param name="drift">A drift whose action is Upsert or Tombstone.</param>
    /// <param name="document">The translated source row for an upsert.</param>
    public static TargetWrite Write(Drift drift, TranslatedDocument? document)
    {
        ArgumentNullException.ThrowIfNull(drift);
        return drift.Kind == DriftKind.Extra
            ? new TargetWrite(drift.Key, drift.Target!.Version, null, Repair: true)
            : new TargetWrite(drift.Key, drift.Source!.Version, document ?? throw new ArgumentNullException(nameof(document)), Repair: true);
    }
}
