using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Translation;

namespace Rollout.Core.Tests.Reconciliation;

/// <summary>Hand-written in-memory fakes of the reconciliation ports, for fast property tests of the logic.</summary>
internal sealed class InMemorySource(SortedList<long, (long Version, object Value)> rows) : IReconcileSource
{
    private static readonly SourceSchema Schema = new(["Id", "C", "V"]);

    public SortedList<long, (long Version, object Value)> Rows { get; } = rows;

    /// <summary>Called after each segment read: lets a test change the stores between the source and the target reads.</summary>
    public Action? AfterRead { get; set; }

    public static SourceKey Key(long id) => SourceKey.From([id]);

    public static SourceRow Row(long id, object value) => new(Schema, [id, id % 3, value]);

    public Task<long> CountAsync(CancellationToken cancellationToken) => Task.FromResult((long)Rows.Count);

    public Task<IReadOnlyList<SnapshotRow>> ReadBatchAsync(SourceKey? afterKey, int batchSize, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<SnapshotRow>>(After(afterKey).Take(batchSize).Select(r => new SnapshotRow(Key(r.Key), r.Value.Version, Row(r.Key, r.Value.Value))).ToArray());

    public Task<SnapshotRow?> GetAsync(SourceKey key, CancellationToken cancellationToken)
    {
        var id = (long)key.Values()[0]!;
        return Task.FromResult(Rows.TryGetValue(id, out var r) ? new SnapshotRow(key, r.Version, Row(id, r.Value)) : null);
    }

    public Task<IReadOnlyList<SourceEntry>> ReadVersionsAsync(SourceKey? after, int max, CancellationToken cancellationToken)
    {
        IReadOnlyList<SourceEntry> entries = After(after).Take(max).Select(r => new SourceEntry(Key(r.Key), r.Value.Version)).ToArray();
        AfterRead?.Invoke();
        return Task.FromResult(entries);
    }

    /// <summary>Segment digests computed (<see cref="QuickDigestAsync"/> calls).</summary>
    public int DigestReads { get; private set; }

    /// <summary>False to behave like a store whose key is not a single integer (no quick digests).</summary>
    public bool SupportsDigests { get; set; } = true;

    public Task<SegmentDigest?> QuickDigestAsync(SourceKey? after, int size, SourceKey? to, CancellationToken cancellationToken)
    {
        if (!SupportsDigests)
        {
            return Task.FromResult<SegmentDigest?>(null);
        }

        DigestReads++;
        var high = to is null ? long.MaxValue : (long)to.Values()[0]!;
        var inRange = After(after).Where(r => r.Key <= high).ToArray();
        var segment = inRange.Take(size).ToArray();
        var isFinal = inRange.Length <= size || segment[^1].Key == high;
        var rows = isFinal ? inRange : segment;
        return Task.FromResult<SegmentDigest?>(new SegmentDigest(
            rows.Length == 0 ? null : Key(rows[^1].Key), isFinal, rows.Length, rows.Sum(r => QuickDigest.Of(r.Key, r.Value.Version))));
    }

    /// <summary>Key bits per bucket of the quick digests this source maintains by bucket, or null for none (segment digests only).</summary>
    public int? BucketBits { get; set; }

    /// <summary>Whole-table bucket reads.</summary>
    public int BucketReads { get; private set; }

    public Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken)
    {
        if (!SupportsDigests || BucketBits is not { } bits)
        {
            return Task.FromResult<QuickBuckets?>(null);
        }

        BucketReads++;
        var buckets = After(null).GroupBy(r => r.Key >> bits)
            .Select(g => new BucketDigest(g.Key, new RangeDigest(g.Count(), g.Sum(r => QuickDigest.Of(r.Key, r.Value.Version)), 0)))
            .OrderBy(b => b.Bucket).ToArray();
        return Task.FromResult(buckets.Length > maxBuckets ? null : new QuickBuckets(bits, buckets));
    }

    private IEnumerable<KeyValuePair<long, (long Version, object Value)>> After(SourceKey? after)
    {
        var from = after is null ? long.MinValue : (long)after.Values()[0]!;
        lock (Rows)
        {
            return [.. Rows.Where(r => after is null || r.Key > from)];
        }
    }
}

internal sealed record StoredDocument(long Version, ContentHash? Hash, bool Tombstone, bool Tampered);

internal sealed class InMemoryTarget : ITargetStore, IReconcileTarget
{
    public SortedDictionary<long, StoredDocument> Documents { get; } = [];

    // The reconciler reads the next segment while it repairs the current one: guard the dictionary.
    private readonly Lock _lock = new();

    public Task<ApplyResult> ApplyAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken)
    {
        using var scope = _lock.EnterScope();
        int applied = 0;
        foreach (var write in writes)
        {
            var id = (long)write.Key.Values()[0]!;
            var exists = Documents.TryGetValue(id, out var current);
            if (!exists || write.SourceVersion > current!.Version || (write.Repair && write.SourceVersion == current.Version))
            {
                Documents[id] = new StoredDocument(write.SourceVersion, write.Document?.Hash, write.Document is null, false);
                applied++;
            }
        }

        return Task.FromResult(new ApplyResult(applied, writes.Count - applied));
    }

    public Task<TargetDocument?> GetAsync(SourceKey key, CancellationToken cancellationToken)
    {
        var id = (long)key.Values()[0]!;
        using var scope = _lock.EnterScope();
        PointReads++;
        return Task.FromResult(Documents.TryGetValue(id, out var d) ? new TargetDocument(key, null, null, d.Version, d.Hash, null, d.Tombstone) : null);
    }

    public Task<IReadOnlyList<TargetEntry>> ReadRangeAsync(SourceKey? after, SourceKey? upTo, bool withHashes, CancellationToken cancellationToken)
    {
        return Task.FromResult<IReadOnlyList<TargetEntry>>(In(after, upTo)
            .Select(d => new TargetEntry(InMemorySource.Key(d.Key), d.Value.Version, d.Value.Tombstone, d.Value.Hash, d.Value.Tampered)).ToArray());
    }

    public Task<RangeDigest> QuickDigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken)
    {
        var live = In(after, upTo).Where(d => !d.Value.Tombstone).ToArray();
        return Task.FromResult(new RangeDigest(live.Length, live.Sum(d => QuickDigest.Of(d.Key, d.Value.Version)), live.Count(d => d.Value.Tampered)));
    }

    /// <summary>Key bits per bucket of the quick digests this target maintains by bucket, or null for none.</summary>
    public int? BucketBits { get; set; }

    public Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken)
    {
        if (BucketBits is not { } bits)
        {
            return Task.FromResult<QuickBuckets?>(null);
        }

        using var scope = _lock.EnterScope();
        var buckets = Documents.Where(d => !d.Value.Tombstone).GroupBy(d => d.Key >> bits)
            .Select(g => new BucketDigest(g.Key, new RangeDigest(g.Count(), g.Sum(d => QuickDigest.Of(d.Key, d.Value.Version)), g.Count(d => d.Value.Tampered))))
            .OrderBy(b => b.Bucket).ToArray();
        return Task.FromResult(buckets.Length > maxBuckets ? null : new QuickBuckets(bits, buckets));
    }

    public Task<RangeDigest> DigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken)
    {
        var docs = In(after, upTo).Where(d => !d.Value.Tombstone).ToArray();
        return Task.FromResult(new RangeDigest(docs.Length, docs.Sum(d => RowDigest.Of(d.Value.Version, d.Value.Hash)), docs.Count(d => d.Value.Tampered)));
    }

    public Task<UnmatchedEntries> ReadUnmatchedAsync(SourceKey? after, SourceKey? upTo, IReadOnlyList<ExpectedDigest> expected, CancellationToken cancellationToken)
    {
        var matched = new bool[expected.Count];
        var entries = new List<TargetEntry>();
        var documents = In(after, upTo);
        foreach (var (id, d) in documents)
        {
            var key = InMemorySource.Key(id);
            var index = expected.ToList().FindIndex(e => e.Sort.AsSpan().SequenceEqual(key.Sort));
            if (index >= 0 && !d.Tombstone && !d.Tampered && RowDigest.Of(d.Version, d.Hash) == expected[index].Digest)
            {
                matched[index] = true;
                continue;
            }

            entries.Add(new TargetEntry(key, d.Version, d.Tombstone, d.Hash, d.Tampered));
        }

        return Task.FromResult(new UnmatchedEntries(matched, entries, documents.Length));
    }

    /// <summary>Point reads (<see cref="GetAsync"/>) so far.</summary>
    public int PointReads { get; private set; }

    /// <summary>The key lists read so far, in order.</summary>
    public List<SourceKey[]> KeyListReads { get; } = [];

    /// <summary>Called before each key-list read is answered (tests record the order of calls, or change the target first).</summary>
    public Action<IReadOnlyList<SourceKey>>? BeforeReadKeys { get; set; }

    public Task<IReadOnlyList<TargetEntry?>> ReadKeysAsync(IReadOnlyList<SourceKey> keys, CancellationToken cancellationToken)
    {
        BeforeReadKeys?.Invoke(keys);
        using var scope = _lock.EnterScope();
        KeyListReads.Add([.. keys]);
        return Task.FromResult<IReadOnlyList<TargetEntry?>>(keys
            .Select(k => Documents.TryGetValue((long)k.Values()[0]!, out var d) ? new TargetEntry(k, d.Version, d.Tombstone, d.Hash, d.Tampered) : null)
            .ToArray());
    }

    private KeyValuePair<long, StoredDocument>[] In(SourceKey? after, SourceKey? upTo)
    {
        var low = after is null ? long.MinValue : (long)after.Values()[0]!;
        var high = upTo is null ? long.MaxValue : (long)upTo.Values()[0]!;
        using var scope = _lock.EnterScope();
        return [.. Documents.Where(d => (after is null || d.Key > low) && d.Key <= high)];
    }
}

internal sealed class InMemoryAudit : IReconcileAuditStore
{
    private readonly Dictionary<long, ReconcileRun> _runs = [];
    private readonly Dictionary<long, SortedDictionary<string, AuditedKey>> _keys = [];

    public Task<ReconcileRun?> GetUnfinishedRunAsync(string feature, CancellationToken cancellationToken) =>
        Task.FromResult(_runs.Values.Where(r => r.Feature == feature && r.Status != ReconcileStatus.Completed).OrderByDescending(r => r.Id).FirstOrDefault());

    public Task<long> StartRunAsync(ReconcileRun run, CancellationToken cancellationToken)
    {
        var id = _runs.Count + 1L;
        _runs[id] = run with { Id = id };
        _keys[id] = new SortedDictionary<string, AuditedKey>(StringComparer.Ordinal);
        return Task.FromResult(id);
    }

    public Task RecordKeysAsync(long runId, IReadOnlyList<AuditedKey> keys, CancellationToken cancellationToken)
    {
        foreach (var key in keys)
        {
            _keys[runId][key.Key.Text] = key;
        }

        return Task.CompletedTask;
    }

    public Task CompleteSegmentAsync(long runId, SourceKey? lastKey, ReconcileCounts counts, CancellationToken cancellationToken)
    {
        _runs[runId] = _runs[runId] with { LastKey = lastKey, Counts = counts };
        return Task.CompletedTask;
    }

    public Task FinishRunAsync(long runId, ReconcileStatus status, ReconcileCounts counts, DateTimeOffset ended, CancellationToken cancellationToken)
    {
        _runs[runId] = _runs[runId] with { Status = status, Counts = counts, Ended = ended };
        return Task.CompletedTask;
    }

    public Task<ReconcileRun?> GetRunAsync(string feature, long runId, CancellationToken cancellationToken) =>
        Task.FromResult(_runs.TryGetValue(runId, out var run) && run.Feature == feature ? run : null);

    public Task<IReadOnlyList<ReconcileRun>> ListRunsAsync(string feature, int max, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ReconcileRun>>(_runs.Values.Where(r => r.Feature == feature).OrderByDescending(r => r.Id).Take(max).ToArray());

    public Task<DateTimeOffset?> OldestUnresolvedSinceAsync(long runId, CancellationToken cancellationToken)
    {
        // As the real stores: a key's first report in the unbroken series of the feature's runs that reported it.
        static bool Unresolved(AuditedKey k) => k.Action is RepairAction.Flag or RepairAction.Report;
        var run0 = _runs[runId];
        var earlier = _runs.Values.Where(r => r.Feature == run0.Feature && r.Id < runId && r.Depth == run0.Depth && r.From is null && r.To is null).OrderByDescending(r => r.Id).ToArray();
        DateTimeOffset? oldest = null;
        foreach (var key in _keys[runId].Values.Where(Unresolved))
        {
            var since = key.At;
            foreach (var run in earlier)
            {
                if (!_keys.TryGetValue(run.Id, out var recorded) || recorded.Values.FirstOrDefault(k => k.Key.Sort.AsSpan().SequenceEqual(key.Key.Sort)) is not { } before || !Unresolved(before))
                {
                    break;
                }

                since = before.At;
            }

            oldest = oldest is { } o && o <= since ? o : since;
        }

        return Task.FromResult(oldest);
    }

    public Task<IReadOnlyList<AuditedKey>> ListKeysAsync(long runId, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<AuditedKey>>(_keys[runId].Values.ToArray());
}
