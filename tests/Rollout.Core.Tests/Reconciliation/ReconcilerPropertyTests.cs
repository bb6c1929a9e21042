using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Tests.Reconciliation;

/// <summary>
/// Random tables with random drift of every kind at random positions (first, last and adjacent keys
/// included): every difference is found, nothing else is reported, one repair pass converges (a second run
/// finds only what must be left to a person), repair is idempotent, and a run that crashes at a random
/// point resumes to the same result. 5,000 cases per depth.
/// </summary>
public sealed class ReconcilerPropertyTests
{
    private static readonly DocumentTranslator Translator = DocumentTranslator.Compile(SpecFixtures.Spec() with
    {
        Mapping = new Dictionary<string, FieldRuleSpec>
        {
            ["id"] = new() { From = "Id", Convert = "string" },
            ["customerId"] = new() { From = "C", Convert = "string" },
            ["v"] = new() { From = "V", Convert = "int64" },
        },
    });

    public enum Injected
    {
        Missing,
        MissingAsOldTombstone,
        Extra,
        DivergentContent,
        DivergentTampered,
        Stale,
        TargetAhead,
        Untranslatable,
    }

    [Property(MaxTest = 5000)]
    public Property Deep_reconciliation_finds_exactly_the_injected_drift_and_converges(byte size, (Injected Kind, byte Position)[] drifts, byte segment, byte leaf, byte crashAt) =>
        Check(ReconcileDepth.Deep, size, drifts, segment, leaf, crashAt, buckets: null);

    [Property(MaxTest = 5000)]
    public Property Quick_reconciliation_finds_exactly_the_injected_drift_it_can_see_and_converges(byte size, (Injected Kind, byte Position)[] drifts, byte segment, byte leaf, byte crashAt) =>
        Check(ReconcileDepth.Quick, size, drifts, segment, leaf, crashAt, buckets: null);

    /// <summary>The same, where both stores maintain bucket digests (0 to 3 key bits per bucket): whole-table quick runs compare buckets.</summary>
    [Property(MaxTest = 5000)]
    public Property Quick_reconciliation_by_maintained_buckets_finds_exactly_the_injected_drift_it_can_see_and_converges(byte size, (Injected Kind, byte Position)[] drifts, byte segment, byte leaf, byte crashAt, byte buckets) =>
        Check(ReconcileDepth.Quick, size, drifts, segment, leaf, crashAt, buckets % 4);

    [Property(MaxTest = 1000)]
    public Property Report_mode_finds_the_same_drift_after_a_crash_and_writes_nothing(bool deep, byte size, (Injected Kind, byte Position)[] drifts, byte segment, byte leaf, byte crashAt, byte buckets)
    {
        var depth = deep ? ReconcileDepth.Deep : ReconcileDepth.Quick;
        var (source, target) = Build(size % 40, drifts, out var expected);
        UseBuckets(source, target, buckets % 5 < 4 ? buckets % 5 : null);
        if (depth == ReconcileDepth.Quick)
        {
            expected = expected.Where(e => e.Value is not (DriftKind.Divergent or DriftKind.Untranslatable) || e.Key.Tampered)
                .ToDictionary(e => e.Key, e => e.Value);
        }

        var before = Snapshot(target);
        var wanted = expected.ToDictionary(e => InMemorySource.Key(e.Key.Id).Text, e => e.Value);
        // Report mode records the keys found with the resume point: a crash loses neither keys nor counts.
        var run = RunAsync(source, target, depth, 1 + (segment % 12), 1 + (leaf % 6), 1 + (crashAt % 7), RepairMode.Report).GetAwaiter().GetResult();
        var found = run.Keys.ToDictionary(k => k.Key.Text, k => k.Kind);
        return (SameSet(found, wanted) && run.Run.Counts.Drifted == wanted.Count && run.Keys.All(k => k.Action is RepairAction.Report or RepairAction.Flag) && run.Run.Counts.Repaired == 0 && Snapshot(target) == before)
            .Label($"depth {depth}: found [{Show(found)}], wanted [{Show(wanted)}], counted {run.Run.Counts.Drifted}");
    }

    [Fact]
    public async Task Deep_mode_reads_target_rows_in_proportion_to_drift_not_table_size()
    {
        var (source, target) = Build(2000, []);
        var clean = await RunAsync(source, target, ReconcileDepth.Deep, 500, 16, null);
        var (source2, target2) = Build(2000, [(Injected.DivergentContent, 7)]);
        var drifted = await RunAsync(source2, target2, ReconcileDepth.Deep, 500, 16, null);

        Assert.Equal(0, clean.Run.Counts.TargetRowsRead);
        Assert.Equal(2000, clean.Run.Counts.Compared);
        Assert.Equal(1, drifted.Run.Counts.Divergent);
        Assert.InRange(drifted.Run.Counts.TargetRowsRead, 1, 16);
    }

    [Fact]
    public async Task Quick_mode_bisects_a_differing_segment_and_reads_entries_in_proportion_to_drift_not_segment_size()
    {
        var (source, target) = Build(2000, []);
        var clean = await RunAsync(source, target, ReconcileDepth.Quick, 500, 16, null);
        var (source2, target2) = Build(2000, [(Injected.Stale, 7), (Injected.Extra, 200), (Injected.Missing, 255)]);
        var drifted = await RunAsync(source2, target2, ReconcileDepth.Quick, 500, 16, null);

        Assert.Equal(0, clean.Run.Counts.TargetRowsRead);
        Assert.Equal(2000, clean.Run.Counts.Compared);
        Assert.Equal(1, drifted.Run.Counts.Stale);
        Assert.Equal(1, drifted.Run.Counts.Extra);
        Assert.Equal(1, drifted.Run.Counts.Missing);
        // Three leaves of at most 16 source keys each (plus the extra key), not three segments of 500.
        Assert.InRange(drifted.Run.Counts.TargetRowsRead, 3, 3 * 17);
    }

    [Fact]
    public async Task Quick_mode_over_maintained_buckets_settles_clean_buckets_without_a_digest_query_and_bisects_only_differing_ones()
    {
        // Keys 2 to 4,000 in buckets of 64 keys (32 rows each): 63 buckets.
        var (source, target) = Build(2000, []);
        UseBuckets(source, target, 6);
        var clean = await RunAsync(source, target, ReconcileDepth.Quick, 500, 16, null);
        var (source2, target2) = Build(2000, [(Injected.Stale, 7), (Injected.Extra, 200), (Injected.Missing, 255), (Injected.DivergentTampered, 100)]);
        UseBuckets(source2, target2, 6);
        var drifted = await RunAsync(source2, target2, ReconcileDepth.Quick, 500, 16, null, RepairMode.Report);

        Assert.Equal(2000, clean.Run.Counts.Compared);
        Assert.Equal(1, source.BucketReads);
        Assert.Equal(0, source.DigestReads);
        Assert.Equal(0, clean.Run.Counts.TargetRowsRead);
        Assert.Equal(ReconcileStatus.Completed, clean.Run.Status);
        Assert.Equal((1, 1, 1, 1), (drifted.Run.Counts.Stale, drifted.Run.Counts.Extra, drifted.Run.Counts.Missing, drifted.Run.Counts.Divergent));
        Assert.Equal(2001, drifted.Run.Counts.Compared); // the extra key too
        // Four differing buckets of 32 rows, each halved once down to leaves of at most 16 keys: a digest query per level.
        Assert.InRange(source2.DigestReads, 4, 8);
        Assert.InRange(drifted.Run.Counts.TargetRowsRead, 4, 4 * 17);
    }

    [Fact]
    public async Task Quick_mode_over_maintained_buckets_goes_segment_by_segment_when_most_buckets_differ_or_the_run_has_an_upper_bound()
    {
        // Stale rows in 40 of the 50 buckets (8 keys each): dense drift is streamed by segments, and every drifted key is found.
        var drifts = Enumerable.Range(0, 40).Select(i => (Injected.Stale, (byte)(5 * i))).ToArray();
        var (source, target) = Build(200, drifts);
        UseBuckets(source, target, 4);
        var dense = await RunAsync(source, target, ReconcileDepth.Quick, 50, 4, null, RepairMode.Report);

        Assert.Equal(40, dense.Run.Counts.Stale);
        Assert.True(source.DigestReads > 0 || dense.Run.Counts.TargetRowsRead >= 200, "dense drift went segment by segment");

        var (source2, target2) = Build(200, [(Injected.Stale, 7)]);
        UseBuckets(source2, target2, 4);
        var reconciler = new Reconciler("orders-v2", Translator, source2, target2, target2, new InMemoryAudit(), TimeProvider.System);
        var ranged = await reconciler.RunAsync(new ReconcileOptions { Depth = ReconcileDepth.Quick, SegmentSize = 50, To = InMemorySource.Key(300) }, null, CancellationToken.None);

        Assert.Equal(1, ranged.Counts.Stale);
        Assert.Equal(150, ranged.Counts.Compared);
        Assert.Equal(0, source2.BucketReads);
    }

    [Fact]
    public async Task Deep_mode_with_dense_drift_compares_by_one_digest_pass_per_segment_and_finds_every_drifted_key()
    {
        // Drift on every 8th key (10% of 2,000 rows is dense): every kind the deep mode sees, first and last keys included.
        var kinds = new[] { Injected.Missing, Injected.Extra, Injected.DivergentContent, Injected.DivergentTampered, Injected.Stale, Injected.TargetAhead, Injected.MissingAsOldTombstone };
        var drifts = Enumerable.Range(0, 250).Select(i => (kinds[i % kinds.Length], (byte)0)).ToArray();
        var (source, target) = Build(2000, [], out _);
        var expected = new Dictionary<string, DriftKind>();
        for (var i = 0; i < drifts.Length; i++)
        {
            var id = 2L * (1 + (8 * i));
            var (version, value) = source.Rows[id];
            var doc = target.Documents[id];
            var kind = drifts[i].Item1;
            switch (kind)
            {
                case Injected.Missing: target.Documents.Remove(id); break;
                case Injected.Extra: id += 1; target.Documents[id] = new StoredDocument(1, new ContentHash(7), false, false); break;
                case Injected.DivergentContent: target.Documents[id] = doc with { Hash = new ContentHash(UInt128.MaxValue - (ulong)id) }; break;
                case Injected.DivergentTampered: target.Documents[id] = doc with { Tampered = true }; break;
                case Injected.Stale: source.Rows[id] = (version + 1, (long)value + 1); break;
                case Injected.TargetAhead: target.Documents[id] = doc with { Version = version + 1 }; break;
                case Injected.MissingAsOldTombstone: source.Rows[id] = (version + 1, value); target.Documents[id] = doc with { Tombstone = true, Hash = null }; break;
            }

            expected[InMemorySource.Key(id).Text] = kind switch
            {
                Injected.Missing or Injected.MissingAsOldTombstone => DriftKind.Missing,
                Injected.Extra => DriftKind.Extra,
                Injected.DivergentContent or Injected.DivergentTampered => DriftKind.Divergent,
                Injected.Stale => DriftKind.Stale,
                _ => DriftKind.TargetAhead,
            };
        }

        var (run, keys) = await RunAsync(source, target, ReconcileDepth.Deep, 400, 16, null, RepairMode.Report);

        Assert.True(SameSet(keys.ToDictionary(k => k.Key.Text, k => k.Kind), expected));
        Assert.Equal(250, run.Counts.Drifted);
        // After the first (bisected) segment, each segment is one pass over its target entries: at most the whole table.
        Assert.InRange(run.Counts.TargetRowsRead, 1600, 2000 + 250);
        // The audit keeps the target's content hash before the repair, as in the bisecting path.
        Assert.All(keys.Where(k => k.Kind == DriftKind.Divergent), k => Assert.NotNull(k.BeforeHash));
    }

    [Fact]
    public async Task Quick_mode_finds_version_drift_whose_old_square_digests_cancelled_exactly()
    {
        // Found by the quick property (1 run in about 6): target ahead on keys 8 and 14, stale on 10 and 12, all in one
        // segment. Versions moved by +1, -1, -1, +1 on keys in arithmetic progression, which left the sum of the
        // former digest (key*A + version)^2 mod P unchanged, so the segment was settled as clean.
        var (source, target) = Build(7, [(Injected.TargetAhead, 90), (Injected.TargetAhead, 66), (Injected.Stale, 201), (Injected.Stale, 221)], out var expected);

        var (_, keys) = await RunAsync(source, target, ReconcileDepth.Quick, 7, 1, null, RepairMode.Report);

        Assert.True(SameSet(keys.ToDictionary(k => k.Key.Text, k => k.Kind), expected.ToDictionary(e => InMemorySource.Key(e.Key.Id).Text, e => e.Value)),
            string.Join(", ", keys.Select(k => $"{k.Key}={k.Kind}")));
        Assert.Equal(4, keys.Count);
    }

    [Fact]
    public async Task A_row_written_between_the_source_and_the_target_reads_is_neither_tombstoned_nor_flagged()
    {
        var (source, target) = Build(10, []);
        source.SupportsDigests = false;
        var fired = false;
        source.AfterRead = () =>
        {
            if (fired)
            {
                return;
            }

            fired = true;
            // After the segment's source read: a new row (key 5) and an update of key 6, both already applied by the feed.
            lock (source.Rows)
            {
                source.Rows[5] = (20, 50L);
                source.Rows[6] = (21, 60L);
            }

            target.Documents[5] = new StoredDocument(20, Translate(5, 50L).Hash, false, false);
            target.Documents[6] = new StoredDocument(21, Translate(6, 60L).Hash, false, false);
        };

        var (run, keys) = await RunAsync(source, target, ReconcileDepth.Quick, 100, 16, null);

        Assert.Empty(keys);
        Assert.Equal(0, run.Counts.Drifted);
        Assert.False(target.Documents[5].Tombstone);
    }

    [Property(MaxTest = 2000)]
    public Property With_the_pipeline_checkpoint_in_flight_changes_are_neither_counted_nor_repaired_and_the_rest_is_found(
        bool deep, byte size, (Injected Kind, byte Position)[] drifts, byte segment, byte leaf, byte checkpoint, ulong caughtUp)
    {
        var depth = deep ? ReconcileDepth.Deep : ReconcileDepth.Quick;
        var (source, target) = Build(size % 40, drifts, out var expected);
        if (depth == ReconcileDepth.Quick)
        {
            expected = expected.Where(e => e.Value is not (DriftKind.Divergent or DriftKind.Untranslatable) || e.Key.Tampered)
                .ToDictionary(e => e.Key, e => e.Value);
        }

        // Missing and stale keys are changes the pipeline may not have applied yet. Some of them (bits of caughtUp) it applies
        // between the segment's target read and the checkpoint read; its checkpoint then covers at least those.
        var pending = expected.Keys.Where(k => expected[k] is DriftKind.Missing or DriftKind.Stale).Select(k => k.Id).Order().ToArray();
        var applied = pending.Where((_, i) => (caughtUp >> (i % 64) & 1) == 1).ToHashSet();
        var position = Math.Max(checkpoint % 6, applied.Select(id => source.Rows[id].Version).DefaultIfEmpty(0).Max());
        var events = new List<string>();
        var checkpointReads = 0;
        target.BeforeReadKeys = keys => events.Add("keys");
        var before = target.Documents.ToDictionary(d => d.Key, d => d.Value);
        var run = RunAsync(source, target, depth, 1 + (segment % 12), 1 + (leaf % 6), null, RepairMode.Auto, _ =>
        {
            if (Interlocked.Increment(ref checkpointReads) == 1)
            {
                foreach (var id in applied)
                {
                    var (version, value) = source.Rows[id];
                    target.ApplyAsync([new TargetWrite(InMemorySource.Key(id), version, Translate(id, value))], CancellationToken.None).GetAwaiter().GetResult();
                }
            }

            events.Add("checkpoint");
            return Task.FromResult<long?>(position);
        }).GetAwaiter().GetResult();

        var inFlight = pending.Where(id => !applied.Contains(id) && source.Rows[id].Version > position).ToHashSet();
        var wanted = expected.Where(e => !applied.Contains(e.Key.Id) && !inFlight.Contains(e.Key.Id)).ToDictionary(e => InMemorySource.Key(e.Key.Id).Text, e => e.Value);
        var found = run.Keys.ToDictionary(k => k.Key.Text, k => k.Kind);
        // Each key-list read comes right after a checkpoint read; no key is read on its own.
        var ordered = events.Select((e, i) => e != "keys" || (i > 0 && events[i - 1] == "checkpoint")).All(ok => ok);
        var untouched = inFlight.All(id => before.TryGetValue(id, out var doc) ? target.Documents[id] == doc : !target.Documents.ContainsKey(id));
        return (SameSet(found, wanted) && run.Run.Counts.Drifted == wanted.Count && ordered && target.PointReads == 0 && untouched)
            .Label($"depth {depth}, checkpoint {position}, applied [{string.Join(",", applied)}], in flight [{string.Join(",", inFlight)}]: found [{Show(found)}], wanted [{Show(wanted)}], events [{string.Join(" ", events)}], point reads {target.PointReads}");
    }

    [Fact]
    public async Task The_drifted_keys_of_a_segment_are_read_again_in_one_key_list_read_after_one_checkpoint_read()
    {
        var (source, target) = Build(40, [(Injected.Stale, 2), (Injected.Missing, 5), (Injected.Stale, 9), (Injected.MissingAsOldTombstone, 14), (Injected.Stale, 30), (Injected.Missing, 255)], out _);
        source.SupportsDigests = false;
        var events = new List<string>();
        target.BeforeReadKeys = keys => events.Add($"keys {string.Join(" ", keys)}");

        var (run, keys) = await RunAsync(source, target, ReconcileDepth.Quick, 100, 16, null, RepairMode.Report, _ =>
        {
            events.Add("checkpoint");
            return Task.FromResult<long?>(100);
        });

        Assert.Equal(["checkpoint", "keys [6] [12] [20] [30] [62] [80]"], events);
        Assert.Equal(0, target.PointReads);
        Assert.Equal((3L, 3L), (run.Counts.Stale, run.Counts.Missing));
        Assert.Equal(6, keys.Count);
    }

    [Fact]
    public async Task Changes_beyond_the_checkpoint_are_in_flight_without_reading_the_target_again()
    {
        var (source, target) = Build(40, [(Injected.Stale, 2), (Injected.Missing, 5), (Injected.Stale, 9)], out _);
        source.SupportsDigests = false;
        // Versions are row % 4 (+1 for a stale row): key 6 is at 4, key 12 at 2, key 20 at 3.
        var (run, _) = await RunAsync(source, target, ReconcileDepth.Quick, 100, 16, null, RepairMode.Report, _ => Task.FromResult<long?>(3));

        Assert.Equal([[InMemorySource.Key(12), InMemorySource.Key(20)]], target.KeyListReads);
        Assert.Equal((1L, 1L), (run.Counts.Stale, run.Counts.Missing));
    }

    private static Property Check(ReconcileDepth depth, byte size, (Injected Kind, byte Position)[] drifts, byte segment, byte leaf, byte crashAt, int? buckets)
    {
        var rows = size % 40;
        var (source, target) = Build(rows, drifts, out var expected);
        UseBuckets(source, target, buckets);
        if (depth == ReconcileDepth.Quick)
        {
            // Quick mode reads no bodies: content-only divergence and untranslatable rows are the deep mode's job.
            expected = expected.Where(e => e.Value is not (DriftKind.Divergent or DriftKind.Untranslatable) || e.Key.Tampered)
                .ToDictionary(e => e.Key, e => e.Value);
        }

        var segmentSize = 1 + (segment % 12);
        var leafSize = 1 + (leaf % 6);
        var first = RunAsync(source, target, depth, segmentSize, leafSize, crashAt % 5 == 0 ? 1 + (crashAt % 7) : null).GetAwaiter().GetResult();
        var found = first.Keys.ToDictionary(k => k.Key.Text, k => k.Kind);
        var wanted = expected.ToDictionary(e => InMemorySource.Key(e.Key.Id).Text, e => e.Value);
        var afterFirst = Snapshot(target);

        var second = RunAsync(source, target, depth, segmentSize, leafSize, null).GetAwaiter().GetResult();
        var third = RunAsync(source, target, depth, segmentSize, leafSize, null).GetAwaiter().GetResult();
        var leftForAPerson = wanted.Where(w => w.Value is DriftKind.TargetAhead or DriftKind.Untranslatable).ToDictionary(w => w.Key, w => w.Value);

        return (SameSet(found, wanted)
                && SameSet(second.Keys.ToDictionary(k => k.Key.Text, k => k.Kind), leftForAPerson)
                && Snapshot(target) == afterFirst
                && third.Run.Counts.Repaired == 0
                && first.Run.Counts.Compared >= source.Rows.Count)
            .Label($"depth {depth}, rows {rows}, segment {segmentSize}, leaf {leafSize}, bucket bits {source.BucketBits}: found [{Show(found)}], wanted [{Show(wanted)}], second run [{Show(second.Keys.ToDictionary(k => k.Key.Text, k => k.Kind))}]");
    }

    private static async Task<(ReconcileRun Run, IReadOnlyList<AuditedKey> Keys)> RunAsync(
        InMemorySource source, InMemoryTarget target, ReconcileDepth depth, int segment, int leaf, int? crashAfterSegments, RepairMode mode = RepairMode.Auto,
        Func<CancellationToken, Task<long?>>? pipelineCheckpoint = null)
    {
        var audit = new InMemoryAudit();
        var segments = 0;
        var reconciler = new Reconciler("orders-v2", Translator, source, target, target, audit, TimeProvider.System, point =>
        {
            if (point == ReconcileFaultPoint.BeforeRepairs && crashAfterSegments is { } n && ++segments == n)
            {
                throw new InvalidOperationException("simulated crash");
            }
        });
        var options = new ReconcileOptions { Depth = depth, Mode = mode, SegmentSize = segment, LeafSize = leaf, PipelineCheckpoint = pipelineCheckpoint };
        ReconcileRun run;
        try
        {
            run = await reconciler.RunAsync(options, null, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            run = await reconciler.RunAsync(options, null, CancellationToken.None);
        }

        return (run, await audit.ListKeysAsync(run.Id, CancellationToken.None));
    }

    private static (InMemorySource, InMemoryTarget) Build(int rows, (Injected Kind, byte Position)[] drifts) => Build(rows, drifts, out _);

    /// <summary>Both stores maintain bucket digests of 2^<paramref name="bits"/> keys, or none (null).</summary>
    private static void UseBuckets(InMemorySource source, InMemoryTarget target, int? bits)
    {
        source.BucketBits = target.BucketBits = bits;
    }

    private static (InMemorySource Source, InMemoryTarget Target) Build(int rows, (Injected Kind, byte Position)[] drifts, out Dictionary<(long Id, bool Tampered), DriftKind> expected)
    {
        // Source keys are even, so that extra target keys can sit between, before and after them.
        var source = new SortedList<long, (long Version, object Value)>();
        for (var i = 1; i <= rows; i++)
        {
            source[2L * i] = (i % 4, (long)i * 10);
        }

        var target = new InMemoryTarget();
        foreach (var (id, row) in source)
        {
            target.Documents[id] = new StoredDocument(row.Version, Translate(id, row.Value).Hash, false, false);
        }

        expected = [];
        var taken = new HashSet<long>();
        foreach (var (kind, position) in drifts ?? [])
        {
            if (kind == Injected.Extra)
            {
                var extra = 2L * (position % (rows + 1)) + 1;
                if (taken.Add(extra))
                {
                    target.Documents[extra] = new StoredDocument(position % 3, new ContentHash(position), false, false);
                    expected[(extra, false)] = DriftKind.Extra;
                }

                continue;
            }

            if (rows == 0)
            {
                continue;
            }

            // Positions 0 and 255 stand for the first and last keys.
            var id = position == 255 ? 2L * rows : 2L * (1 + (position % rows));
            if (!taken.Add(id))
            {
                continue;
            }

            var (version, value) = source[id];
            var doc = target.Documents[id];
            switch (kind)
            {
                case Injected.Missing:
                    target.Documents.Remove(id);
                    expected[(id, false)] = DriftKind.Missing;
                    break;
                case Injected.MissingAsOldTombstone:
                    source[id] = (version + 1, value);
                    target.Documents[id] = doc with { Tombstone = true, Hash = null };
                    expected[(id, false)] = DriftKind.Missing;
                    break;
                case Injected.DivergentContent:
                    target.Documents[id] = doc with { Hash = new ContentHash(UInt128.MaxValue - (ulong)id) };
                    expected[(id, false)] = DriftKind.Divergent;
                    break;
                case Injected.DivergentTampered:
                    target.Documents[id] = doc with { Tampered = true };
                    expected[(id, true)] = DriftKind.Divergent;
                    break;
                case Injected.Stale:
                    source[id] = (version + 1, (long)value + 1);
                    expected[(id, false)] = DriftKind.Stale;
                    break;
                case Injected.TargetAhead:
                    target.Documents[id] = doc with { Version = version + 1 };
                    expected[(id, false)] = DriftKind.TargetAhead;
                    break;
                case Injected.Untranslatable:
                    source[id] = (version, "not a number");
                    expected[(id, false)] = DriftKind.Untranslatable;
                    break;
            }
        }

        return (new InMemorySource(source), target);
    }

    private static TranslatedDocument Translate(long id, object value) => Translator.Translate(InMemorySource.Row(id, value)).Document!;

    private static bool SameSet(Dictionary<string, DriftKind> a, Dictionary<string, DriftKind> b) =>
        a.Count == b.Count && a.All(x => b.TryGetValue(x.Key, out var kind) && kind == x.Value);

    private static string Snapshot(InMemoryTarget target) => string.Join(";", target.Documents.Select(d => $"{d.Key}:{d.Value}"));

    private static string Show(Dictionary<string, DriftKind> set) => string.Join(", ", set.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}={s.Value}"));
}
