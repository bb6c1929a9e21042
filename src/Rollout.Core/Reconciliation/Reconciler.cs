using Rollout.Core.DataPath;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Reconciliation;

/// <summary>The source side of a reconciliation: key-ordered rows with their versions.</summary>
public interface IReconcileSource : ISourceReader
{
    /// <summary>Up to <paramref name="max"/> (key, version) pairs after <paramref name="after"/> in key order, without row bodies.</summary>
    /// <param name="after">Last key already read, or null to start.</param>
    /// <param name="max">Batch size.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<SourceEntry>> ReadVersionsAsync(SourceKey? after, int max, CancellationToken cancellationToken);

    /// <summary>
    /// The <see cref="QuickDigest"/> of the next segment (up to <paramref name="size"/> keys after <paramref name="after"/>,
    /// none beyond <paramref name="to"/>), computed by the store; null when the table's key is not a single integer.
    /// </summary>
    /// <param name="after">Exclusive lower bound.</param>
    /// <param name="size">Keys per segment.</param>
    /// <param name="to">Inclusive upper bound of the run, or null.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<SegmentDigest?> QuickDigestAsync(SourceKey? after, int size, SourceKey? to, CancellationToken cancellationToken);

    /// <summary>
    /// The quick digests of the whole table by key bucket, as the store maintains them with every write (see
    /// <see cref="QuickBuckets"/>); null when the store keeps none (a key that is not a single integer, a store that does
    /// not maintain them) or when the table has more than <paramref name="maxBuckets"/> non-empty buckets.
    /// </summary>
    /// <param name="maxBuckets">At most this many buckets (bounds the memory of a run).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken);

    /// <summary>
    /// Deep mode: up to <paramref name="max"/> rows after <paramref name="after"/> in key order, each as its key, version and
    /// the content hash of its document as <paramref name="translator"/> gives it (or the errors that keep it from
    /// translating). A store may hash each row where its reader holds it (<see cref="ISourceRecord"/>), without building a
    /// <see cref="SourceRow"/> (then <see cref="SourceEntry.Row"/> is null, and a repair reads the row again); by default
    /// this reads a batch with <see cref="ISourceReader.ReadBatchAsync"/> and hashes its rows on every core.
    /// </summary>
    /// <param name="after">Last key already read, or null to start.</param>
    /// <param name="max">Batch size.</param>
    /// <param name="translator">The rollout's compiled mapping.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<SourceEntry>> ReadHashesAsync(SourceKey? after, int max, DocumentTranslator translator, CancellationToken cancellationToken) =>
        SourceHashing.ReadAndHashAsync(this, after, max, translator, cancellationToken);
}

/// <summary>The default of <see cref="IReconcileSource.ReadHashesAsync"/>: a batch of rows, hashed on every core.</summary>
public static class SourceHashing
{
    /// <summary>Reads a batch with <see cref="ISourceReader.ReadBatchAsync"/> and hashes its rows (each entry keeps its row).</summary>
    /// <param name="source">The source.</param>
    /// <param name="after">Last key already read, or null to start.</param>
    /// <param name="max">Batch size.</param>
    /// <param name="translator">The rollout's compiled mapping.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<IReadOnlyList<SourceEntry>> ReadAndHashAsync(ISourceReader source, SourceKey? after, int max, DocumentTranslator translator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(translator);
        var rows = await source.ReadBatchAsync(after, max, cancellationToken);
        // Rows are independent and cost about a microsecond each: in chunks, on every core.
        const int chunk = 512;
        var entries = new SourceEntry[rows.Count];
        Parallel.For(0, (rows.Count + chunk - 1) / chunk, c =>
        {
            for (var i = c * chunk; i < Math.Min(rows.Count, (c + 1) * chunk); i++)
            {
                var hash = translator.Hash(rows[i].Row, out var errors);
                entries[i] = new SourceEntry(rows[i].Key, rows[i].Version, hash, errors, rows[i].Row);
            }
        });
        return entries;
    }
}

/// <summary>
/// A table's quick digests summed by key bucket and kept up to date by the store on every write (its change-capture
/// triggers), so that a quick reconciliation of a clean table reads one row per bucket on each side instead of one per key.
/// Bucket <c>b</c> holds the keys from <c>b × 2^Bits</c> to <c>(b + 1) × 2^Bits − 1</c>.
/// </summary>
/// <param name="Bits">Key bits per bucket.</param>
/// <param name="Buckets">Non-empty buckets in key order.</param>
public sealed record QuickBuckets(int Bits, IReadOnlyList<BucketDigest> Buckets);

/// <summary>One bucket of <see cref="QuickBuckets"/>: the <see cref="RangeDigest"/> of its key range.</summary>
/// <param name="Bucket">Bucket number (key arithmetic-shifted right by the bucket bits).</param>
/// <param name="Digest">Live rows, sum of their quick digests and (target) documents whose write marker moved.</param>
public readonly record struct BucketDigest(long Bucket, RangeDigest Digest);

/// <summary>The source digest of a segment.</summary>
/// <param name="Last">Last key of the segment (null when it is empty).</param>
/// <param name="IsFinal">True when no key follows the segment in the run's range.</param>
/// <param name="Count">Rows.</param>
/// <param name="Sum">Sum of <see cref="QuickDigest"/>s.</param>
public sealed record SegmentDigest(SourceKey? Last, bool IsFinal, long Count, long Sum);

/// <summary>The digest of a target key range: row count, sum of <see cref="RowDigest"/>s, and documents changed outside the pipeline.</summary>
/// <param name="Count">Live documents.</param>
/// <param name="Sum">Sum of row digests.</param>
/// <param name="Tampered">Documents whose write marker moved since the pipeline wrote them.</param>
public readonly record struct RangeDigest(long Count, long Sum, long Tampered);

/// <summary>The row digest (<see cref="RowDigest"/>) a live target document of a key must have to match its source row.</summary>
/// <param name="Sort">The key's sort key (<see cref="SourceKey.Sort"/>).</param>
/// <param name="Digest">Row digest of the source row's version and translated content hash.</param>
public readonly record struct ExpectedDigest(byte[] Sort, long Digest);

/// <summary>What a target range holds beyond the expected row digests.</summary>
/// <param name="Matched">For each expected digest, whether a live document with that key, digest and an unmoved write marker exists.</param>
/// <param name="Entries">Every other entry of the range (with content hashes), in key order.</param>
/// <param name="Read">Entries the store read one by one to decide (all of the range's).</param>
public sealed record UnmatchedEntries(bool[] Matched, IReadOnlyList<TargetEntry> Entries, long Read);

/// <summary>The target side of a reconciliation: key-ordered entries and range digests.</summary>
public interface IReconcileTarget
{
    /// <summary>Entries with a key in (<paramref name="after"/>, <paramref name="upTo"/>] in key order; null bounds are open.</summary>
    /// <param name="after">Exclusive lower bound.</param>
    /// <param name="upTo">Inclusive upper bound.</param>
    /// <param name="withHashes">Read content hashes too (deep mode); quick mode does not need them.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<TargetEntry>> ReadRangeAsync(SourceKey? after, SourceKey? upTo, bool withHashes, CancellationToken cancellationToken);

    /// <summary>Quick digest of the live documents of a range: count, sum of stored <see cref="QuickDigest"/>s, documents whose marker moved.</summary>
    /// <param name="after">Exclusive lower bound.</param>
    /// <param name="upTo">Inclusive upper bound.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<RangeDigest> QuickDigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken);

    /// <summary>The quick digests of the live documents by key bucket, as the store maintains them (see <see cref="IReconcileSource.QuickBucketsAsync"/>).</summary>
    /// <param name="maxBuckets">At most this many buckets.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken);

    /// <summary>The digest of the live documents of the same range, computed by the store (tombstones have no source row to match).</summary>
    /// <param name="after">Exclusive lower bound.</param>
    /// <param name="upTo">Inclusive upper bound.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<RangeDigest> DigestAsync(SourceKey? after, SourceKey? upTo, CancellationToken cancellationToken);

    /// <summary>
    /// Deep mode where drift is dense: merge-joins the range's documents, in key order, with the expected row digests (in the
    /// same order) inside the store, and returns full entries only for what does not match, so that a range with drift
    /// every few rows is compared in one pass without bisection and without materialising the matching entries.
    /// </summary>
    /// <param name="after">Exclusive lower bound.</param>
    /// <param name="upTo">Inclusive upper bound.</param>
    /// <param name="expected">Expected digests of the source rows of the range, in key order.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<UnmatchedEntries> ReadUnmatchedAsync(SourceKey? after, SourceKey? upTo, IReadOnlyList<ExpectedDigest> expected, CancellationToken cancellationToken);

    /// <summary>
    /// The entries of a list of keys, read together in as few round trips as the store allows (the reconciler's second look at
    /// a segment's drifted keys): one result per key, in the order given (a key listed twice gets its entry twice), null where
    /// the target holds nothing for the key, not even a tombstone. Entries are what <see cref="ReadRangeAsync"/> gives with
    /// hashes: version, tombstone flag, content hash and the write-marker flag, as the target holds them when read.
    /// </summary>
    /// <param name="keys">Keys, in any order, duplicates allowed.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<TargetEntry?>> ReadKeysAsync(IReadOnlyList<SourceKey> keys, CancellationToken cancellationToken);
}

/// <summary>Counts of one run.</summary>
public sealed record ReconcileCounts
{
    /// <summary>Distinct keys compared.</summary>
    public long Compared { get; init; }

    /// <summary>Missing in the target.</summary>
    public long Missing { get; init; }

    /// <summary>Extra in the target.</summary>
    public long Extra { get; init; }

    /// <summary>Same version, different content.</summary>
    public long Divergent { get; init; }

    /// <summary>Older version in the target.</summary>
    public long Stale { get; init; }

    /// <summary>Newer version in the target.</summary>
    public long TargetAhead { get; init; }

    /// <summary>Source rows that cannot be translated.</summary>
    public long Untranslatable { get; init; }

    /// <summary>Repairs written.</summary>
    public long Repaired { get; init; }

    /// <summary>Keys left for a person.</summary>
    public long Flagged { get; init; }

    /// <summary>Source rows read again with their bodies to repair a difference (quick mode).</summary>
    public long FetchedInFull { get; init; }

    /// <summary>Target entries read one by one (the rest was settled by range digests in deep mode).</summary>
    public long TargetRowsRead { get; init; }

    /// <summary>Drifted keys of every kind.</summary>
    public long Drifted => Missing + Extra + Divergent + Stale + TargetAhead + Untranslatable;

    /// <summary>Drifted / compared.</summary>
    public double DriftRate => Compared == 0 ? 0 : (double)Drifted / Compared;

    /// <summary>Adds another set of counts.</summary>
    /// <param name="o">Counts to add.</param>
    public ReconcileCounts Add(ReconcileCounts o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return new()
        {
            Compared = Compared + o.Compared,
            Missing = Missing + o.Missing,
            Extra = Extra + o.Extra,
            Divergent = Divergent + o.Divergent,
            Stale = Stale + o.Stale,
            TargetAhead = TargetAhead + o.TargetAhead,
            Untranslatable = Untranslatable + o.Untranslatable,
            Repaired = Repaired + o.Repaired,
            Flagged = Flagged + o.Flagged,
            FetchedInFull = FetchedInFull + o.FetchedInFull,
            TargetRowsRead = TargetRowsRead + o.TargetRowsRead,
        };
    }
}

/// <summary>Status of a run.</summary>
public enum ReconcileStatus
{
    /// <summary>In progress (or crashed: the next run resumes it).</summary>
    Running,

    /// <summary>Reached the end of the range.</summary>
    Completed,

    /// <summary>Stopped on request; the next run resumes it.</summary>
    Cancelled,
}

/// <summary>One reconciliation run, as audited.</summary>
/// <param name="Id">Run id.</param>
/// <param name="Feature">Feature key.</param>
/// <param name="Depth">Quick or deep.</param>
/// <param name="Mode">Repair or report.</param>
/// <param name="Started">Start time.</param>
/// <param name="Ended">End time, null while running.</param>
/// <param name="From">Exclusive lower key bound of the range, null for the start of the table.</param>
/// <param name="To">Inclusive upper key bound, null for the end of the table.</param>
/// <param name="LastKey">Last key of the last completed segment (resume point).</param>
/// <param name="Status">Status.</param>
/// <param name="Counts">Counts so far.</param>
public sealed record ReconcileRun(long Id, string Feature, ReconcileDepth Depth, RepairMode Mode, DateTimeOffset Started, DateTimeOffset? Ended,
    SourceKey? From, SourceKey? To, SourceKey? LastKey, ReconcileStatus Status, ReconcileCounts Counts);

/// <summary>One affected key in the audit trail.</summary>
/// <param name="Key">Source key.</param>
/// <param name="Kind">Drift kind.</param>
/// <param name="Action">What was done.</param>
/// <param name="SourceVersion">Source version, if the row exists.</param>
/// <param name="TargetVersion">Target version, if there is a document.</param>
/// <param name="BeforeHash">Target content hash before.</param>
/// <param name="AfterHash">Content hash written by the repair.</param>
/// <param name="At">When.</param>
/// <param name="Detail">Reason for a flag (translation errors, target ahead…).</param>
public sealed record AuditedKey(SourceKey Key, DriftKind Kind, RepairAction Action, long? SourceVersion, long? TargetVersion,
    ContentHash? BeforeHash, ContentHash? AfterHash, DateTimeOffset At, string? Detail);

/// <summary>The append-only audit trail of reconciliation.</summary>
public interface IReconcileAuditStore
{
    /// <summary>The feature's unfinished run (running or cancelled), if any.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<ReconcileRun?> GetUnfinishedRunAsync(string feature, CancellationToken cancellationToken);

    /// <summary>Records a new run and returns its id.</summary>
    /// <param name="run">The run (id ignored).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<long> StartRunAsync(ReconcileRun run, CancellationToken cancellationToken);

    /// <summary>Records the affected keys of a segment (one record per run and key; a resumed segment updates it), before repairs are written.</summary>
    /// <param name="runId">Run id.</param>
    /// <param name="keys">Affected keys.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task RecordKeysAsync(long runId, IReadOnlyList<AuditedKey> keys, CancellationToken cancellationToken);

    /// <summary>Marks a segment complete: the resume point and the counts so far.</summary>
    /// <param name="runId">Run id.</param>
    /// <param name="lastKey">Last key of the segment.</param>
    /// <param name="counts">Counts so far.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task CompleteSegmentAsync(long runId, SourceKey? lastKey, ReconcileCounts counts, CancellationToken cancellationToken);

    /// <summary>Ends a run.</summary>
    /// <param name="runId">Run id.</param>
    /// <param name="status">Completed or cancelled.</param>
    /// <param name="counts">Final counts.</param>
    /// <param name="ended">End time.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task FinishRunAsync(long runId, ReconcileStatus status, ReconcileCounts counts, DateTimeOffset ended, CancellationToken cancellationToken);

    /// <summary>One run of a feature, or null when there is no run of that id or it belongs to another feature.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="runId">Run id.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<ReconcileRun?> GetRunAsync(string feature, long runId, CancellationToken cancellationToken);

    /// <summary>Runs of a feature, newest first.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="max">At most this many.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<ReconcileRun>> ListRunsAsync(string feature, int max, CancellationToken cancellationToken);

    /// <summary>
    /// When the oldest drift left unresolved by a run (flagged or only reported) was first reported in the unbroken series
    /// of the feature's whole-table runs of the same depth that reported it (such a run that found the key in step, or
    /// stopped before it, starts the series again; quick runs do not break a deep series, nor ranged runs any series);
    /// null when the run left nothing unresolved. Stores carry the first report forward as they record a key, so
    /// the answer reads only the run's own records.
    /// </summary>
    /// <param name="runId">Run id.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<DateTimeOffset?> OldestUnresolvedSinceAsync(long runId, CancellationToken cancellationToken);

    /// <summary>The affected keys of a run, in key order.</summary>
    /// <param name="runId">Run id.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<AuditedKey>> ListKeysAsync(long runId, CancellationToken cancellationToken);
}

/// <summary>Settings of a reconciliation.</summary>
public sealed record ReconcileOptions
{
    /// <summary>Quick or deep.</summary>
    public ReconcileDepth Depth { get; init; } = ReconcileDepth.Quick;

    /// <summary>Repair or report.</summary>
    public RepairMode Mode { get; init; } = RepairMode.Auto;

    /// <summary>Source rows per segment.</summary>
    public int SegmentSize { get; init; } = 5000;

    /// <summary>Below this many rows a differing range is compared row by row instead of bisected further (deep mode, and quick mode with segment digests).</summary>
    public int LeafSize { get; init; } = 16;

    /// <summary>Source rows per second at most (0 = unbounded), so that a run at peak does not starve the application.</summary>
    public int MaxRowsPerSecond { get; init; }

    /// <summary>
    /// Quick mode: compare the bucket digests both stores maintain with every write, where they do (true by default). False
    /// computes every segment's digest from the rows instead: a check that does not rest on the maintained sums.
    /// </summary>
    public bool UseBuckets { get; init; } = true;

    /// <summary>Exclusive lower key bound, null for the start of the table.</summary>
    public SourceKey? From { get; init; }

    /// <summary>Inclusive upper key bound, null for the end of the table.</summary>
    public SourceKey? To { get; init; }

    /// <summary>
    /// The source version up to which the dual-write pipeline has applied the feed (its checkpoint), read when a
    /// segment's drift is settled. A missing or stale key whose source version is newer is in flight, not drift:
    /// it is neither counted nor repaired (the pipeline applies it). Null counts every difference as drift, as a
    /// manual reconciliation with the pipeline stopped should.
    /// </summary>
    public Func<CancellationToken, Task<long?>>? PipelineCheckpoint { get; init; }
}

/// <summary>Where a fault can be injected in a reconciliation (crash tests).</summary>
public enum ReconcileFaultPoint
{
    /// <summary>After a segment's keys were audited, before its repairs.</summary>
    BeforeRepairs,

    /// <summary>After a segment's repairs, before its completion was recorded.</summary>
    BeforeSegmentComplete,
}

/// <summary>
/// Compares source and target segment by segment in key order and repairs by <see cref="RepairPolicy"/>.
/// Quick mode compares segment digests where both stores compute them (single integer keys), bisects differing
/// segments by digests, and merge-joins (key, version, write marker) streams of small or dense ranges; where both
/// stores maintain bucket digests (<see cref="QuickBuckets"/>), a whole-table quick run compares those instead of
/// computing segment digests, and bisects only the buckets that differ. Deep mode re-translates every source row,
/// compares the segment's digest with the digest the target computes for the same key range, and only for
/// differing ranges bisects down to small ranges whose entries are read and merge-joined: the target rows
/// fetched follow the amount of drift, not the table size. Each segment is audited before its repairs and
/// marked complete after them (a clean segment at most once a second), so a crashed or cancelled run resumes
/// from its last recorded segment and reaches the same result.
/// </summary>
public sealed class Reconciler
{
    private readonly string _feature;
    private readonly DocumentTranslator _translator;
    private readonly IReconcileSource _source;
    private readonly IReconcileTarget _targetRanges;
    private readonly ITargetStore _target;
    private readonly IReconcileAuditStore _audit;
    private readonly TimeProvider _time;
    private readonly Action<ReconcileFaultPoint>? _fault;
    private readonly Gate.ITelemetrySink? _telemetry;
    private readonly RolloutMetrics? _metrics;
    private volatile bool _denseDrift;
    private bool _denseDeep;
    private int _segmentSize;
    private bool _lastSettled;

    /// <summary>Report mode: keys found are recorded with the resume point at the latest when this many are waiting (bounded memory at dense drift).</summary>
    private const int MaxUnrecordedKeys = 4096;

    /// <summary>Quick mode: a segment settled by digests lets the next one double, up to this many times the configured size.</summary>
    private const int MaxSegmentGrowth = 4;

    /// <summary>Quick mode: drift is dense when a segment holds more than one drifted key in this many (bisection would cost more than streaming).</summary>
    private const int DenseDriftRatio = 128;

    /// <summary>Deep mode: drift is dense when a segment holds more than one drifted key in this many (a digest pass costs less than bisection).</summary>
    private const int DeepDenseDriftRatio = 1024;

    /// <summary>Deep mode: and holds at least this many (a lone drifted key in a small segment is still bisected).</summary>
    private const int DeepDenseDriftMinimum = 4;

    /// <summary>Creates a reconciler.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="translator">The same compiled mapping the dual writes use.</param>
    /// <param name="source">Source side.</param>
    /// <param name="targetRanges">Target ranges and digests.</param>
    /// <param name="target">Target writes (the dual-write path).</param>
    /// <param name="audit">Audit trail.</param>
    /// <param name="time">Clock (rate limit, audit times).</param>
    /// <param name="fault">Test hook.</param>
    /// <param name="telemetry">Where the drift rate and age of each completed run go (health evaluation).</param>
    /// <param name="metrics">Instruments.</param>
    public Reconciler(string feature, DocumentTranslator translator, IReconcileSource source, IReconcileTarget targetRanges, ITargetStore target,
        IReconcileAuditStore audit, TimeProvider time, Action<ReconcileFaultPoint>? fault = null, Gate.ITelemetrySink? telemetry = null, RolloutMetrics? metrics = null)
    {
        _telemetry = telemetry;
        _metrics = metrics;
        _feature = feature;
        _translator = translator;
        _source = source;
        _targetRanges = targetRanges;
        _target = target;
        _audit = audit;
        _time = time;
        _fault = fault;
    }

    /// <summary>Runs (or resumes the unfinished) reconciliation to the end of its range.</summary>
    /// <param name="options">Settings; ignored for depth, mode and range when an unfinished run is resumed.</param>
    /// <param name="progress">Called after each segment with the run so far.</param>
    /// <param name="cancellationToken">Stops after the current segment; the run is recorded as cancelled and resumes next time.</param>
    public async Task<ReconcileRun> RunAsync(ReconcileOptions options, Action<ReconcileRun>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var run = await _audit.GetUnfinishedRunAsync(_feature, CancellationToken.None);
        if (run is null)
        {
            run = new ReconcileRun(0, _feature, options.Depth, options.Mode, _time.GetUtcNow(), null, options.From, options.To, options.From, ReconcileStatus.Running, new ReconcileCounts());
            run = run with { Id = await _audit.StartRunAsync(run, CancellationToken.None) };
        }

        if (run.Depth == ReconcileDepth.Quick && options.UseBuckets && await PlanBucketsAsync(run) is { } plan)
        {
            return await RunByBucketsAsync(run, plan, options, progress, cancellationToken);
        }

        var started = _time.GetTimestamp();
        long rowsThisRun = 0;
        var counts = run.Counts;
        var after = run.LastKey;
        _segmentSize = options.SegmentSize;
        _lastSettled = false;
        _denseDeep = false;
        var reading = ReadSegmentAsync(run, after, options.SegmentSize);
        var persisted = _time.GetTimestamp();
        // Report mode writes nothing but the audit trail: the keys found are recorded together with the resume point
        // (at most once a second), since a crash before it re-compares those segments and finds the same keys again.
        var unrecorded = new List<AuditedKey>();
        while (true)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return await CancelAsync(run, counts, unrecorded);
            }

            var (raw, last, isFinal, rows) = await reading;
            if (!isFinal)
            {
                // Read the next segment while this one is translated, compared and repaired (reads only: harmless if unused).
                var next = last;
                var size = NextSegmentSize(run.Depth, options.SegmentSize);
                reading = Task.Run(() => ReadSegmentAsync(run, next, size));
            }

            if (raw.PendingTarget is { } pending)
            {
                // The target's digest of this segment was computed while the next segment's source digest started.
                var target = await pending;
                raw = target.Count == raw.SourceDigest.Count && target.Sum == raw.SourceDigest.Sum && target.Tampered == 0
                    ? new RawSegment([], SettledByDigest: true)
                    : new RawSegment(null, Differing: (raw.SourceDigest, target));
                _lastSettled = raw.SettledByDigest;
            }

            var segment = raw.Entries ?? [];
            var upTo = isFinal ? run.To : last;
            var drifts = new List<Drift>();
            var segmentCounts = raw.SettledByDigest
                ? new ReconcileCounts { Compared = rows }
                : raw.Differing is var (sourceDigest, targetDigest)
                    ? await CompareQuickAsync(after, upTo, sourceDigest, targetDigest, options.LeafSize, drifts)
                    : run.Depth == ReconcileDepth.Deep
                        ? await CompareDeepAsync(segment, after, upTo, options.LeafSize, drifts)
                        : await CompareRangeAsync(segment, after, upTo, ReconcileDepth.Quick, drifts);
            if (run.Depth == ReconcileDepth.Deep)
            {
                // Dense drift: compare the next segments by one digest pass each (no bisection) until a sparse one.
                _denseDeep = drifts.Count >= DeepDenseDriftMinimum && (long)drifts.Count * DeepDenseDriftRatio > Math.Max(1, rows);
            }

            if (run.Depth == ReconcileDepth.Quick && !raw.SettledByDigest)
            {
                // Dense drift (more than one drifted key in DenseDriftRatio): stream the next segments without digests until one is clean.
                _denseDrift = drifts.Count > 0 && (long)drifts.Count * DenseDriftRatio > Math.Max(1, rows);
            }

            segmentCounts = await RepairAsync(run, drifts, segmentCounts, run.Mode == RepairMode.Report ? unrecorded : null, options.PipelineCheckpoint);
            counts = counts.Add(segmentCounts);
            persisted = await PersistIfDueAsync(run, drifts.Count, isFinal, isFinal ? upTo : last, counts, unrecorded, persisted);

            run = run with { LastKey = isFinal ? upTo : last, Counts = counts };
            progress?.Invoke(run);
            after = last;
            rowsThisRun += rows;
            if (isFinal)
            {
                return await CompleteAsync(run, counts);
            }

            await ThrottleAsync(options.MaxRowsPerSecond, rowsThisRun, started, cancellationToken);
        }
    }

    /// <summary>
    /// Records the keys waiting to be recorded and the resume point with the counts so far, when due: after a segment with
    /// repairs, at the end, once report mode holds <see cref="MaxUnrecordedKeys"/>, and otherwise at most once a second (a
    /// crash re-compares at most a second's worth of segments, and clean runs do not pay a durable write each).
    /// </summary>
    /// <returns>When the resume point was last persisted.</returns>
    private async Task<long> PersistIfDueAsync(ReconcileRun run, int drifted, bool final, SourceKey? lastKey, ReconcileCounts counts,
        List<AuditedKey> unrecorded, long persisted)
    {
        if (!final && !(drifted > 0 && run.Mode != RepairMode.Report) && unrecorded.Count < MaxUnrecordedKeys
            && _time.GetElapsedTime(persisted) < TimeSpan.FromSeconds(1))
        {
            return persisted;
        }

        await FlushAsync(run.Id, unrecorded);
        await _audit.CompleteSegmentAsync(run.Id, lastKey, counts, CancellationToken.None);
        return _time.GetTimestamp();
    }

    /// <summary>Records a cancelled run with its resume point (the last segment completed); the next run resumes it.</summary>
    private async Task<ReconcileRun> CancelAsync(ReconcileRun run, ReconcileCounts counts, List<AuditedKey> unrecorded)
    {
        await PersistIfDueAsync(run, 0, final: true, run.LastKey, counts, unrecorded, 0);
        var ended = _time.GetUtcNow();
        await _audit.FinishRunAsync(run.Id, ReconcileStatus.Cancelled, counts, ended, CancellationToken.None);
        return run with { Status = ReconcileStatus.Cancelled, Counts = counts, Ended = ended };
    }

    private async Task<ReconcileRun> CompleteAsync(ReconcileRun run, ReconcileCounts counts)
    {
        var ended = _time.GetUtcNow();
        await _audit.FinishRunAsync(run.Id, ReconcileStatus.Completed, counts, ended, CancellationToken.None);
        await PublishAsync(run, counts, ended);
        return run with { Status = ReconcileStatus.Completed, Ended = ended };
    }

    /// <summary>Quick mode over maintained buckets: at most this many buckets a side are read (32 bytes each in memory).</summary>
    private const int MaxBuckets = 1 << 18;

    /// <summary>A bucket whose digests differ, and the source rows of the clean buckets between it and the one before.</summary>
    private readonly record struct BucketStep(long Bucket, long CleanBefore, RangeDigest Source, RangeDigest Target);

    /// <summary>What a quick run over maintained buckets compares: the differing buckets in key order, and the clean rows after the last.</summary>
    private sealed record BucketPlan(int Bits, IReadOnlyList<BucketStep> Differing, long CleanAfter);

    /// <summary>
    /// A quick run of the whole table (or its rest, resumed at a bucket's end) where both stores maintain bucket digests:
    /// reads the buckets of both sides and keeps those that differ. Null (the run goes segment by segment) when a store keeps
    /// no buckets, the run has an upper bound or resumes inside a bucket, or more than half the buckets differ (dense drift:
    /// streaming the table costs less than bisecting nearly every bucket).
    /// </summary>
    private async Task<BucketPlan?> PlanBucketsAsync(ReconcileRun run)
    {
        if (run.To is not null)
        {
            return null;
        }

        var sourceBuckets = Task.Run(() => _source.QuickBucketsAsync(MaxBuckets, CancellationToken.None));
        var target = await _targetRanges.QuickBucketsAsync(MaxBuckets, CancellationToken.None);
        var source = await sourceBuckets;
        if (source is null || target is null || source.Bits != target.Bits || source.Bits is < 0 or > 62)
        {
            return null;
        }

        var bits = source.Bits;
        var first = long.MinValue;
        if (run.LastKey is { } start)
        {
            var mask = (1L << bits) - 1;
            if (!start.TryGetSingleInteger(out var key) || (key & mask) != mask)
            {
                return null;
            }

            if (key == long.MaxValue)
            {
                return new BucketPlan(bits, [], 0);
            }

            first = (key >> bits) + 1;
        }

        var differing = new List<BucketStep>();
        long clean = 0, buckets = 0;
        int i = 0, j = 0;
        var s = source.Buckets;
        var t = target.Buckets;
        while (i < s.Count || j < t.Count)
        {
            var bucket = j >= t.Count || (i < s.Count && s[i].Bucket <= t[j].Bucket) ? s[i].Bucket : t[j].Bucket;
            var sourceDigest = i < s.Count && s[i].Bucket == bucket ? s[i++].Digest : default;
            var targetDigest = j < t.Count && t[j].Bucket == bucket ? t[j++].Digest : default;
            if (bucket < first)
            {
                continue;
            }

            buckets++;
            if (sourceDigest.Count == targetDigest.Count && sourceDigest.Sum == targetDigest.Sum && targetDigest.Tampered == 0)
            {
                clean += sourceDigest.Count;
            }
            else
            {
                differing.Add(new BucketStep(bucket, clean, sourceDigest, targetDigest));
                clean = 0;
            }
        }

        return differing.Count * 2L > buckets ? null : new BucketPlan(bits, differing, clean);
    }

    /// <summary>
    /// Quick mode over maintained buckets: clean buckets are settled without reading a row; each differing bucket is
    /// bisected by range digests (<see cref="CompareQuickAsync"/>) and its drift audited and repaired as a segment. The resume
    /// point is a bucket's last key, so a crashed run resumes by buckets too. The row limit counts the rows of differing
    /// buckets, the only rows either store reads.
    /// </summary>
    private async Task<ReconcileRun> RunByBucketsAsync(ReconcileRun run, BucketPlan plan, ReconcileOptions options, Action<ReconcileRun>? progress, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var persisted = started;
        var counts = run.Counts;
        var unrecorded = new List<AuditedKey>();
        long rowsRead = 0;
        var width = (1L << plan.Bits) - 1;
        foreach (var step in plan.Differing)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return await CancelAsync(run, counts, unrecorded);
            }

            var low = step.Bucket << plan.Bits;
            var after = low == long.MinValue ? null : SourceKey.From([low - 1]);
            var upTo = SourceKey.From([low + width]);
            var drifts = new List<Drift>();
            var compared = await CompareQuickAsync(after, upTo, step.Source, step.Target, options.LeafSize, drifts);
            var segmentCounts = await RepairAsync(run, drifts, new ReconcileCounts { Compared = step.CleanBefore }.Add(compared),
                run.Mode == RepairMode.Report ? unrecorded : null, options.PipelineCheckpoint);
            counts = counts.Add(segmentCounts);
            persisted = await PersistIfDueAsync(run, drifts.Count, final: false, upTo, counts, unrecorded, persisted);

            run = run with { LastKey = upTo, Counts = counts };
            progress?.Invoke(run);
            rowsRead += compared.Compared;
            await ThrottleAsync(options.MaxRowsPerSecond, rowsRead, started, cancellationToken);
        }

        counts = counts.Add(new ReconcileCounts { Compared = plan.CleanAfter });
        await PersistIfDueAsync(run, 0, final: true, null, counts, unrecorded, persisted);
        run = run with { LastKey = null, Counts = counts };
        progress?.Invoke(run);
        return await CompleteAsync(run, counts);
    }

    private async Task PublishAsync(ReconcileRun run, ReconcileCounts counts, DateTimeOffset ended)
    {
        if (_telemetry is null && _metrics is null)
        {
            return;
        }

        var since = await _audit.OldestUnresolvedSinceAsync(run.Id, CancellationToken.None);
        var age = since is { } first ? ended - first : (TimeSpan?)null;
        _telemetry?.RecordDrift(new Gate.DriftSample(ended, _feature, counts.Compared, counts.Drifted, run.From is null && run.To is null, age));
        _metrics?.RecordReconciliation(_feature, run.Depth.ToString().ToLowerInvariant(), counts.Compared, new Dictionary<string, long>
        {
            ["missing"] = counts.Missing,
            ["extra"] = counts.Extra,
            ["divergent"] = counts.Divergent,
            ["stale"] = counts.Stale,
            ["target_ahead"] = counts.TargetAhead,
            ["untranslatable"] = counts.Untranslatable,
        }, age);
    }

    /// <summary>
    /// A segment as read: (key, version) entries in quick mode, (key, version, hash) entries in deep mode, settled by digests,
    /// known by its quick digests (source, target) to differ, or waiting for the target's digest.
    /// </summary>
    private sealed record RawSegment(IReadOnlyList<SourceEntry>? Entries, bool SettledByDigest = false,
        (RangeDigest Source, RangeDigest Target)? Differing = null, RangeDigest SourceDigest = default, Task<RangeDigest>? PendingTarget = null);

    private async Task<(RawSegment Segment, SourceKey? Last, bool IsFinal, int Rows)> ReadSegmentAsync(ReconcileRun run, SourceKey? after, int size)
    {
        SourceKey[] keys;
        RawSegment segment;
        if (run.Depth == ReconcileDepth.Deep)
        {
            // Read and hashed (on another thread: RunAsync reads the next segment while it compares this one).
            var entries = await _source.ReadHashesAsync(after, size, _translator, CancellationToken.None);
            if (run.To is { } to)
            {
                // Keys beyond the range's upper bound belong to no segment.
                entries = entries.Where(e => SortKey.Compare(e.Key.Sort, to.Sort) <= 0).ToArray();
            }

            segment = new RawSegment(entries);
            keys = entries.Select(e => e.Key).ToArray();
        }
        else
        {
            // Single integer keys: both stores digest the segment themselves; a match settles it without reading rows,
            // and a differing segment is bisected by digests down to small ranges (CompareQuickAsync). Where drift is
            // dense (the last differing segment held many drifted keys), digests cost more than they save: stream
            // until a clean segment.
            var digest = _denseDrift ? null : await _source.QuickDigestAsync(after, size, run.To, CancellationToken.None);
            if (digest is not null)
            {
                // The target digests the same key range on another thread, while the next segment's source digest is read.
                var upTo = digest.IsFinal ? run.To : digest.Last;
                var target = Task.Run(() => _targetRanges.QuickDigestAsync(after, upTo, CancellationToken.None));
                var pending = new RawSegment(null, SourceDigest: new RangeDigest(digest.Count, digest.Sum, 0), PendingTarget: target);
                return (pending, digest.Last ?? after, digest.IsFinal, (int)digest.Count);
            }

            var entries = await _source.ReadVersionsAsync(after, size, CancellationToken.None);
            if (run.To is { } to)
            {
                entries = entries.Where(e => SortKey.Compare(e.Key.Sort, to.Sort) <= 0).ToArray();
            }

            segment = new RawSegment(entries);
            keys = entries.Select(e => e.Key).ToArray();
        }

        var isFinal = keys.Length < size || (run.To is { } bound && keys.Length > 0 && SortKey.Compare(keys[^1].Sort, bound.Sort) == 0);
        return (segment, keys.Length > 0 ? keys[^1] : after, isFinal, keys.Length);
    }

    /// <summary>
    /// Quick mode: while segments are settled by digests they grow (doubling, up to <see cref="MaxSegmentGrowth"/> times the
    /// configured size), so that a clean table costs few digest queries; any other segment brings the size back to the
    /// configured one. (The next segment is read before the current one's target digest is known: the last known outcome decides.)
    /// </summary>
    private int NextSegmentSize(ReconcileDepth depth, int configured)
    {
        if (depth != ReconcileDepth.Quick)
        {
            return configured;
        }

        _segmentSize = _lastSettled ? (int)Math.Min((long)_segmentSize * 2, (long)configured * MaxSegmentGrowth) : configured;
        return _segmentSize;
    }

    /// <summary>
    /// Quick mode: a range (<paramref name="after"/>, <paramref name="upTo"/>] whose source and target digests differ. Small
    /// ranges are streamed and merge-joined; larger ones are halved by the source's own segment digest (the first half of its
    /// keys) and the target's digest of the same key range, the other half's digests being the differences (digests add up),
    /// so each level costs one query per side and only differing halves go further: the entries read follow the drift.
    /// </summary>
    private async Task<ReconcileCounts> CompareQuickAsync(SourceKey? after, SourceKey? upTo, RangeDigest source, RangeDigest target, int leafSize, List<Drift> drifts)
    {
        if (source.Count == target.Count && source.Sum == target.Sum && target.Tampered == 0)
        {
            return new ReconcileCounts { Compared = source.Count };
        }

        if (source.Count <= Math.Max(1, leafSize))
        {
            return await StreamQuickAsync(after, upTo, source.Count, drifts);
        }

        var half = await _source.QuickDigestAsync(after, (int)(source.Count / 2), upTo, CancellationToken.None);
        if (half?.Last is not { } middle || half.Count <= 0 || half.Count >= source.Count
            || (upTo is not null && SortKey.Compare(middle.Sort, upTo.Sort) >= 0))
        {
            // The source changed since its digest was read (or cannot be split): compare the range row by row.
            return await StreamQuickAsync(after, upTo, source.Count, drifts);
        }

        var leftSource = new RangeDigest(half.Count, half.Sum, 0);
        var leftTarget = await _targetRanges.QuickDigestAsync(after, middle, CancellationToken.None);
        var rightSource = new RangeDigest(source.Count - half.Count, source.Sum - half.Sum, 0);
        var rightTarget = new RangeDigest(target.Count - leftTarget.Count, target.Sum - leftTarget.Sum, target.Tampered - leftTarget.Tampered);
        return (await CompareQuickAsync(after, middle, leftSource, leftTarget, leafSize, drifts))
            .Add(await CompareQuickAsync(middle, upTo, rightSource, rightTarget, leafSize, drifts));
    }

    /// <summary>Quick mode: reads the (key, version) entries of a range from both stores and merge-joins them.</summary>
    private async Task<ReconcileCounts> StreamQuickAsync(SourceKey? after, SourceKey? upTo, long expected, List<Drift> drifts)
    {
        var entries = new List<SourceEntry>();
        var from = after;
        var batch = (int)Math.Clamp(expected + 16, 16, 65_536);
        while (true)
        {
            var read = await _source.ReadVersionsAsync(from, batch, CancellationToken.None);
            var inRange = upTo is null ? read : read.Where(e => SortKey.Compare(e.Key.Sort, upTo.Sort) <= 0).ToArray();
            entries.AddRange(inRange);
            if (read.Count < batch || inRange.Count < read.Count)
            {
                break;
            }

            from = read[^1].Key;
        }

        return await CompareRangeAsync(entries, after, upTo, ReconcileDepth.Quick, drifts);
    }

    private async Task<ReconcileCounts> CompareRangeAsync(IReadOnlyList<SourceEntry> source, SourceKey? after, SourceKey? upTo, ReconcileDepth depth, List<Drift> drifts)
    {
        var target = await _targetRanges.ReadRangeAsync(after, upTo, withHashes: depth == ReconcileDepth.Deep, CancellationToken.None);
        long compared = 0;
        drifts.AddRange(DriftClassifier.Compare(source, target, depth, () => compared++));
        return new ReconcileCounts { Compared = compared, TargetRowsRead = target.Count };
    }

    private async Task<ReconcileCounts> CompareDeepAsync(IReadOnlyList<SourceEntry> source, SourceKey? after, SourceKey? upTo, int leafSize, List<Drift> drifts, bool knownToDiffer = false)
    {
        if (source.Any(e => e.Untranslatable))
        {
            return await CompareRangeAsync(source, after, upTo, ReconcileDepth.Deep, drifts);
        }

        if (!knownToDiffer && _denseDeep)
        {
            return await CompareUnmatchedAsync(source, after, upTo, drifts);
        }

        if (!knownToDiffer && await MatchesAsync(source, after, upTo))
        {
            return new ReconcileCounts { Compared = source.Count };
        }

        if (source.Count <= leafSize)
        {
            return await CompareRangeAsync(source, after, upTo, ReconcileDepth.Deep, drifts);
        }

        var mid = source.Count / 2;
        var left = source.Take(mid).ToArray();
        var right = source.Skip(mid).ToArray();
        var leftMatches = await MatchesAsync(left, after, left[^1].Key);
        var rightMatches = await MatchesAsync(right, left[^1].Key, upTo);
        if (!leftMatches && !rightMatches)
        {
            // Drift on both sides. A small range is read once (cheaper than more digest queries); a larger one is
            // bisected on both sides, so that the rows read stay in proportion to the drift.
            return source.Count <= 4 * leafSize
                ? await CompareRangeAsync(source, after, upTo, ReconcileDepth.Deep, drifts)
                : (await CompareDeepAsync(left, after, left[^1].Key, leafSize, drifts, knownToDiffer: true))
                    .Add(await CompareDeepAsync(right, left[^1].Key, upTo, leafSize, drifts, knownToDiffer: true));
        }

        var settled = new ReconcileCounts { Compared = leftMatches ? left.Length : right.Length };
        return leftMatches
            ? settled.Add(await CompareDeepAsync(right, left[^1].Key, upTo, leafSize, drifts, knownToDiffer: true))
            : settled.Add(await CompareDeepAsync(left, after, left[^1].Key, leafSize, drifts, knownToDiffer: true));
    }

    /// <summary>Deep mode, dense drift: the target matches row digests in one pass; only what does not match is classified.</summary>
    private async Task<ReconcileCounts> CompareUnmatchedAsync(IReadOnlyList<SourceEntry> source, SourceKey? after, SourceKey? upTo, List<Drift> drifts)
    {
        var expected = new ExpectedDigest[source.Count];
        for (var i = 0; i < expected.Length; i++)
        {
            expected[i] = new ExpectedDigest(source[i].Key.Sort, RowDigest.Of(source[i].Version, source[i].Hash!.Value));
        }

        var result = await _targetRanges.ReadUnmatchedAsync(after, upTo, expected, CancellationToken.None);
        var unmatched = new List<SourceEntry>();
        long matched = 0;
        for (var i = 0; i < source.Count; i++)
        {
            if (result.Matched[i])
            {
                matched++;
            }
            else
            {
                unmatched.Add(source[i]);
            }
        }

        long compared = 0;
        drifts.AddRange(DriftClassifier.Compare(unmatched, result.Entries, ReconcileDepth.Deep, () => compared++));
        return new ReconcileCounts { Compared = matched + compared, TargetRowsRead = result.Read };
    }

    private async Task<bool> MatchesAsync(IReadOnlyList<SourceEntry> source, SourceKey? after, SourceKey? upTo)
    {
        var digest = await _targetRanges.DigestAsync(after, upTo, CancellationToken.None);
        var expected = source.Aggregate(0L, (sum, e) => sum + RowDigest.Of(e.Version, e.Hash!.Value));
        return digest.Count == source.Count && digest.Sum == expected && digest.Tampered == 0;
    }

    private async Task FlushAsync(long runId, List<AuditedKey> unrecorded)
    {
        if (unrecorded.Count > 0)
        {
            await _audit.RecordKeysAsync(runId, unrecorded.ToArray(), CancellationToken.None);
            unrecorded.Clear();
        }
    }

    /// <summary>Audits and repairs a segment's drift; in report mode the audited keys go to <paramref name="unrecorded"/> (recorded with the resume point).</summary>
    private async Task<ReconcileCounts> RepairAsync(ReconcileRun run, List<Drift> drifts, ReconcileCounts counts, List<AuditedKey>? unrecorded, Func<CancellationToken, Task<long?>>? pipelineCheckpoint)
    {
        if (drifts.Count == 0)
        {
            return counts;
        }

        var now = _time.GetUtcNow();
        var writes = new List<TargetWrite>();
        var audited = new List<AuditedKey>(drifts.Count);
        long repaired = 0, flagged = 0;
        var (inFlight, fetched) = await InFlightAsync(drifts, pipelineCheckpoint);
        var kinds = new Dictionary<DriftKind, long>();
        for (var index = 0; index < drifts.Count; index++)
        {
            var drift = drifts[index];
            if (inFlight[index])
            {
                continue;
            }

            TranslatedDocument? document = null;
            string? detail = null;
            if (drift.Kind is DriftKind.Extra or DriftKind.TargetAhead)
            {
                // The source was read before the target: a row inserted or updated in between (and already applied by
                // the feed) looks extra or ahead. Confirm against the row as it is now before tombstoning or flagging.
                fetched++;
                var current = await _source.GetAsync(drift.Key, CancellationToken.None);
                if (current is not null && current.Version >= drift.Target!.Version)
                {
                    continue;
                }
            }

            if (RepairPolicy.Decide(drift, run.Mode) == RepairAction.Upsert && drift.Source?.Row is { } read)
            {
                // Deep mode kept the row it hashed: its document, at the version compared.
                var translated = _translator.Translate(read);
                document = translated.Document;
                if (!translated.IsSuccess)
                {
                    drift = new Drift(DriftKind.Untranslatable, drift.Key, drift.Source with { Errors = translated.Errors }, drift.Target);
                }
            }

            if (RepairPolicy.Decide(drift, run.Mode) == RepairAction.Upsert && document is null)
            {
                // Quick mode knows versions only: read and translate the row to repair it.
                fetched++;
                var row = await _source.GetAsync(drift.Key, CancellationToken.None);
                if (row is null)
                {
                    continue; // Deleted since the segment was read: the feed's tombstone settles it.
                }

                var translated = _translator.Translate(row.Row);
                if (translated.IsSuccess)
                {
                    document = translated.Document;
                    drift = drift with { Source = drift.Source! with { Version = row.Version, Hash = document!.Hash } };
                }
                else
                {
                    drift = new Drift(DriftKind.Untranslatable, drift.Key, drift.Source! with { Errors = translated.Errors }, drift.Target);
                }
            }

            var action = RepairPolicy.Decide(drift, run.Mode);
            kinds[drift.Kind] = kinds.GetValueOrDefault(drift.Kind) + 1;
            if (action is RepairAction.Upsert or RepairAction.Tombstone)
            {
                writes.Add(RepairPolicy.Write(drift, document));
                repaired++;
            }
            else if (action == RepairAction.Flag)
            {
                flagged++;
                detail = drift.Kind == DriftKind.Untranslatable
                    ? string.Join("; ", drift.Source!.Errors!.Select(e => e.ToString()))
                    : $"target holds version {drift.Target?.Version}, source version {drift.Source?.Version}: a write reached the target outside the pipeline";
            }

            audited.Add(new AuditedKey(drift.Key, drift.Kind, action, drift.Source?.Version, drift.Target?.Version, drift.Target?.Hash,
                action == RepairAction.Upsert ? document?.Hash : null, now, detail));
        }

        if (unrecorded is not null && writes.Count == 0)
        {
            unrecorded.AddRange(audited);
        }
        else
        {
            await _audit.RecordKeysAsync(run.Id, audited, CancellationToken.None);
        }

        _fault?.Invoke(ReconcileFaultPoint.BeforeRepairs);
        if (writes.Count > 0)
        {
            await _target.ApplyAsync(writes, CancellationToken.None);
        }

        _fault?.Invoke(ReconcileFaultPoint.BeforeSegmentComplete);
        return counts.Add(new ReconcileCounts
        {
            Missing = kinds.GetValueOrDefault(DriftKind.Missing),
            Extra = kinds.GetValueOrDefault(DriftKind.Extra),
            Divergent = kinds.GetValueOrDefault(DriftKind.Divergent),
            Stale = kinds.GetValueOrDefault(DriftKind.Stale),
            TargetAhead = kinds.GetValueOrDefault(DriftKind.TargetAhead),
            Untranslatable = kinds.GetValueOrDefault(DriftKind.Untranslatable),
            Repaired = repaired,
            Flagged = flagged,
            FetchedInFull = fetched,
        });
    }

    /// <summary>
    /// In flight or drift? For each missing or stale key of a segment (when the pipeline's checkpoint is known): a change the
    /// pipeline applied after the segment's target read shows in the target now, and one it has not applied yet is beyond the
    /// checkpoint; only a change at or below the checkpoint that the target still lacks is drift. The checkpoint is read once,
    /// before the target is read again, and the keys at or below it are read in one key-list read instead of one point read each.
    /// </summary>
    /// <returns>For each drift, whether it is in flight (neither counted nor repaired); and the target entries read.</returns>
    private async Task<(bool[] InFlight, long Read)> InFlightAsync(List<Drift> drifts, Func<CancellationToken, Task<long?>>? pipelineCheckpoint)
    {
        var inFlight = new bool[drifts.Count];
        if (pipelineCheckpoint is null || !drifts.Any(IsPending))
        {
            return (inFlight, 0);
        }

        var applied = await pipelineCheckpoint(CancellationToken.None) ?? 0;
        var check = new List<int>();
        for (var i = 0; i < drifts.Count; i++)
        {
            if (IsPending(drifts[i]))
            {
                // A change beyond the checkpoint is in flight whatever the target holds now: no need to read it.
                if (drifts[i].Source!.Version > applied)
                {
                    inFlight[i] = true;
                }
                else
                {
                    check.Add(i);
                }
            }
        }

        if (check.Count > 0)
        {
            var current = await _targetRanges.ReadKeysAsync(check.Select(i => drifts[i].Key).ToArray(), CancellationToken.None);
            for (var j = 0; j < check.Count; j++)
            {
                inFlight[check[j]] = current[j] is { } entry && entry.Version >= drifts[check[j]].Source!.Version;
            }
        }

        return (inFlight, check.Count);

        static bool IsPending(Drift drift) => drift.Kind is DriftKind.Missing or DriftKind.Stale && drift.Source is not null;
    }

    private async Task ThrottleAsync(int maxRowsPerSecond, long rows, long started, CancellationToken cancellationToken)
    {
        if (maxRowsPerSecond <= 0)
        {
            return;
        }

        var due = TimeSpan.FromSeconds((double)rows / maxRowsPerSecond) - _time.GetElapsedTime(started);
        if (due > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(due, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Cancellation is handled at the top of the next segment.
            }
        }
    }
}
