using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class ReconciliationTests
{
    [Theory]
    [InlineData(ReconcileDepth.Quick)]
    [InlineData(ReconcileDepth.Deep)]
    public async Task Every_kind_of_drift_on_real_files_is_found_repaired_or_flagged_and_audited(ReconcileDepth depth)
    {
        await using var p = await SyncedPipelineAsync(rows: 40);
        await InjectDriftAsync(p);

        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Depth = depth, SegmentSize = 7, LeafSize = 2 }, null, CancellationToken.None);
        var keys = await p.Audit.ListKeysAsync(run.Id, CancellationToken.None);
        var second = await p.Reconciler().RunAsync(new ReconcileOptions { Depth = depth, SegmentSize = 7 }, null, CancellationToken.None);

        Assert.Equal(ReconcileStatus.Completed, run.Status);
        var found = keys.ToDictionary(k => k.Key.Text, k => (k.Kind, k.Action));
        Assert.Equal((DriftKind.Missing, RepairAction.Upsert), found["[1]"]);
        Assert.Equal((DriftKind.Extra, RepairAction.Tombstone), found["[1000]"]);
        Assert.Equal((DriftKind.Divergent, RepairAction.Upsert), found["[20]"]);
        Assert.Equal((DriftKind.Stale, RepairAction.Upsert), found["[21]"]);
        Assert.Equal((DriftKind.TargetAhead, RepairAction.Flag), found["[22]"]);
        Assert.Equal((DriftKind.Stale, RepairAction.Upsert), found["[40]"]);
        Assert.Equal(6, found.Count);
        Assert.Equal(41, run.Counts.Compared);
        Assert.Equal(5, run.Counts.Repaired);
        Assert.Equal(1, run.Counts.Flagged);
        Assert.Equal("[22]", Assert.Single(await p.Audit.ListKeysAsync(second.Id, CancellationToken.None)).Key.Text);
        Assert.Contains("outside the pipeline", keys.Single(k => k.Kind == DriftKind.TargetAhead).Detail, StringComparison.Ordinal);
        var repaired = keys.Single(k => k.Key.Text == "[21]");
        Assert.NotEqual(repaired.BeforeHash, repaired.AfterHash);
    }

    [Fact]
    public async Task Deep_mode_finds_a_mapping_bug_that_quick_mode_cannot_see()
    {
        await using var p = await SyncedPipelineAsync(rows: 30);
        // The pipeline wrote these documents with another mapping: same versions, different content.
        // A pipeline write sets a new marker and records it (a write without a new marker is taken as outside the pipeline).
        await p.ExecuteTargetAsync("UPDATE documents_orders SET hash = '00000000000000000000000000000001', digest = (digest + 1) % 2147483648, etag = etag + 1, pipeline_etag = etag + 1 WHERE source_key IN ('[3]', '[17]')");

        var quick = await p.Reconciler().RunAsync(new ReconcileOptions { Depth = ReconcileDepth.Quick, Mode = RepairMode.Report }, null, CancellationToken.None);
        var deep = await p.Reconciler().RunAsync(new ReconcileOptions { Depth = ReconcileDepth.Deep, Mode = RepairMode.Report, SegmentSize = 10, LeafSize = 2 }, null, CancellationToken.None);

        Assert.Equal(0, quick.Counts.Drifted);
        Assert.Equal(2, deep.Counts.Divergent);
        Assert.InRange(deep.Counts.TargetRowsRead, 2, 8);
    }

    [Fact]
    public async Task Deep_mode_with_dense_drift_on_real_files_finds_every_drifted_key_and_keeps_the_target_hash()
    {
        await using var p = await SyncedPipelineAsync(rows: 200);
        // Every 5th key drifts (20%): content changed outside the pipeline's mapping, stale, or missing.
        await p.ExecuteTargetAsync("UPDATE documents_orders SET hash = '00000000000000000000000000000001', digest = (digest + 1) % 2147483648, etag = etag + 1, pipeline_etag = etag + 1 WHERE CAST(id AS INTEGER) % 15 = 5");
        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE CAST(id AS INTEGER) % 15 = 10");
        for (var i = 15; i <= 200; i += 15)
        {
            await p.UpsertAsync(i, 1, 1, "changed");
        }

        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Depth = ReconcileDepth.Deep, Mode = RepairMode.Report, SegmentSize = 50, LeafSize = 2 }, null, CancellationToken.None);
        var keys = await p.Audit.ListKeysAsync(run.Id, CancellationToken.None);

        Assert.Equal(14, run.Counts.Divergent);
        Assert.Equal(13, run.Counts.Missing);
        Assert.Equal(13, run.Counts.Stale);
        Assert.Equal(40, keys.Count);
        Assert.All(keys, k => Assert.Equal(0, long.Parse(k.Key.Text.Trim('[', ']'), System.Globalization.CultureInfo.InvariantCulture) % 5));
        Assert.All(keys.Where(k => k.Kind == DriftKind.Divergent), k => Assert.Equal("00000000000000000000000000000001", k.BeforeHash?.ToString()));
        Assert.Equal(200, run.Counts.Compared);
        // Segments after the first are compared in one pass each: at most every entry, read once.
        Assert.InRange(run.Counts.TargetRowsRead, 150, 200);
    }

    [Fact]
    public async Task Report_mode_records_drift_and_changes_nothing()
    {
        await using var p = await SyncedPipelineAsync(rows: 30);
        await InjectDriftAsync(p);
        var before = await DocumentsAsync(p);

        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Equal(0, run.Counts.Repaired);
        Assert.True(run.Counts.Drifted >= 5);
        Assert.All(await p.Audit.ListKeysAsync(run.Id, CancellationToken.None), k => Assert.Contains(k.Action, new[] { RepairAction.Report, RepairAction.Flag }));
        Assert.Equal(before, await DocumentsAsync(p));
    }

    [Fact]
    public async Task A_crash_mid_run_resumes_from_the_last_segment_and_reaches_the_same_result()
    {
        await using var reference = await SyncedPipelineAsync(rows: 60);
        await using var crashing = await SyncedPipelineAsync(rows: 60);
        await InjectDriftAsync(reference);
        await InjectDriftAsync(crashing);
        var options = new ReconcileOptions { Depth = ReconcileDepth.Deep, SegmentSize = 8, LeafSize = 2 };
        var segments = 0;

        var clean = await reference.Reconciler().RunAsync(options, null, CancellationToken.None);
        var faulty = crashing.Reconciler(point =>
        {
            if (point == ReconcileFaultPoint.BeforeSegmentComplete && ++segments == 3)
            {
                throw new IOException("simulated crash");
            }
        });
        await Assert.ThrowsAsync<IOException>(() => faulty.RunAsync(options, null, CancellationToken.None));
        var interrupted = Assert.Single(await crashing.Audit.ListRunsAsync("orders-v2", 10, CancellationToken.None));
        var resumed = await crashing.Reconciler().RunAsync(options, null, CancellationToken.None);

        Assert.Equal(ReconcileStatus.Running, interrupted.Status);
        Assert.Equal(interrupted.Id, resumed.Id);
        Assert.Equal(ReconcileStatus.Completed, resumed.Status);
        Assert.Equal(Summary(await reference.Audit.ListKeysAsync(clean.Id, CancellationToken.None)), Summary(await crashing.Audit.ListKeysAsync(resumed.Id, CancellationToken.None)));
        Assert.Equal(await DocumentsAsync(reference), await DocumentsAsync(crashing));
    }

    [Fact]
    public async Task A_cancelled_run_stops_after_its_segment_and_the_next_run_resumes_it()
    {
        await using var p = await SyncedPipelineAsync(rows: 50);
        using var cancel = new CancellationTokenSource();

        // Segment by segment (a clean table compared by its maintained buckets is done in one step).
        var cancelled = await p.Reconciler().RunAsync(new ReconcileOptions { SegmentSize = 10, UseBuckets = false }, run => { if (run.Counts.Compared >= 20) cancel.Cancel(); }, cancel.Token);
        var resumed = await p.Reconciler().RunAsync(new ReconcileOptions { SegmentSize = 10, UseBuckets = false }, null, CancellationToken.None);

        Assert.Equal(ReconcileStatus.Cancelled, cancelled.Status);
        Assert.Equal(20, cancelled.Counts.Compared);
        Assert.Equal((cancelled.Id, ReconcileStatus.Completed, 50L), (resumed.Id, resumed.Status, resumed.Counts.Compared));
    }

    [Fact]
    public async Task A_key_range_is_compared_alone()
    {
        await using var p = await SyncedPipelineAsync(rows: 30);
        await InjectDriftAsync(p);

        var run = await p.Reconciler().RunAsync(new ReconcileOptions { From = new SourceKey("[10]"), To = new SourceKey("[21]"), SegmentSize = 4 }, null, CancellationToken.None);

        Assert.Equal(11, run.Counts.Compared);
        Assert.Equal(["[20]", "[21]"], (await p.Audit.ListKeysAsync(run.Id, CancellationToken.None)).Select(k => k.Key.Text));
    }

    [Fact]
    public async Task Reconciliation_honours_the_row_rate_limit()
    {
        await using var p = await SyncedPipelineAsync(rows: 30);
        var reconciler = p.Reconciler();
        var start = p.Time.GetUtcNow();

        // 10 rows/s and segments of 10. Each completed segment is stamped with the fake time; the test only moves the
        // fake clock (in small steps, whenever the run waits), so the stamps do not depend on how fast this machine is.
        var stamps = new System.Collections.Concurrent.ConcurrentQueue<(long Compared, TimeSpan At)>();
        var running = reconciler.RunAsync(new ReconcileOptions { SegmentSize = 10, MaxRowsPerSecond = 10, UseBuckets = false },
            run => stamps.Enqueue((run.Counts.Compared, p.Time.GetUtcNow() - start)), CancellationToken.None);
        var advanced = TimeSpan.Zero;
        while (!running.IsCompleted && advanced < TimeSpan.FromMinutes(1))
        {
            await Task.WhenAny(running, Task.Delay(20));
            p.Time.Advance(TimeSpan.FromMilliseconds(100));
            advanced += TimeSpan.FromMilliseconds(100);
        }

        var done = await running;
        var segments = stamps.ToArray();

        Assert.Equal((ReconcileStatus.Completed, 30L), (done.Status, done.Counts.Compared));
        Assert.Equal(10L, segments[0].Compared);
        // A segment starts only when the rows before it are within the rate: after n rows, not before n / 10 seconds.
        for (var i = 1; i < segments.Length; i++)
        {
            Assert.True(segments[i].At >= TimeSpan.FromSeconds(segments[i - 1].Compared / 10.0),
                $"segment ending at {segments[i].Compared} rows completed at {segments[i].At}, before {segments[i - 1].Compared} rows / 10 per second");
        }

        Assert.True(segments[^1].At >= TimeSpan.FromSeconds(2), $"30 rows at 10 rows/s in segments of at least 10 took {segments[^1].At}");
    }

    [Fact]
    public async Task A_repair_racing_a_concurrent_writer_never_loses_the_newer_version()
    {
        await using var p = await SyncedPipelineAsync(rows: 200);
        // Everything stale: the source moved on while the processor was stopped.
        await p.ExecuteSourceAsync("UPDATE Orders SET TotalCents = TotalCents + 1");
        var writer = Task.Run(async () =>
        {
            var random = new Random(3);
            for (var i = 0; i < 300; i++)
            {
                await p.ExecuteSourceAsync("UPDATE Orders SET TotalCents = TotalCents + 7, Status = 'raced' WHERE OrderId = @id", ("@id", (long)random.Next(1, 201)));
                if (i % 25 == 0)
                {
                    await p.Processor("feed").DrainAsync(CancellationToken.None);
                }
            }
        });

        for (var i = 0; i < 3; i++)
        {
            await p.Reconciler().RunAsync(new ReconcileOptions { Depth = ReconcileDepth.Deep, SegmentSize = 16, LeafSize = 4 }, null, CancellationToken.None);
        }

        await writer;
        await p.Processor("feed").DrainAsync(CancellationToken.None);
        await p.AssertTargetMatchesSourceAsync("after racing repairs");
    }

    private static async Task<Pipeline> SyncedPipelineAsync(int rows)
    {
        var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= rows; i++)
        {
            await p.UpsertAsync(i, i % 5, i * 100, "new");
        }

        await p.Processor().DrainAsync(CancellationToken.None);
        return p;
    }

    /// <summary>Missing [1], extra [1000], divergent [20] (written outside the pipeline), stale [21] and [last] (source
    /// writes the processor has not applied), target ahead [22].</summary>
    private static async Task InjectDriftAsync(Pipeline p)
    {
        var last = await p.Source.CountAsync(CancellationToken.None);
        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE source_key = '[1]'");
        await p.ExecuteTargetAsync("""
            INSERT INTO documents_orders (sort_key, source_key, id, pk, source_version, hash, json, deleted, etag, pipeline_etag, digest, quick_digest)
            SELECT X'20800000000003E8', '[1000]', '1000', '0', 1, hash, json, 0, 5, 5, 0, 0 FROM documents_orders WHERE source_key = '[2]'
            """);
        await p.ExecuteTargetAsync("UPDATE documents_orders SET json = '{\"edited\":true}' WHERE source_key = '[20]'");
        await p.ExecuteTargetAsync("UPDATE documents_orders SET source_version = source_version + 100 WHERE source_key = '[22]'");
        await p.UpsertAsync(21, 1, 1, "changed");
        await p.UpsertAsync(last, 1, 1, "changed");
    }

    private static async Task<string> DocumentsAsync(Pipeline p)
    {
        var docs = new List<string>();
        await foreach (var d in p.Target.ReadAllAsync())
        {
            docs.Add($"{d.Key}:{d.SourceVersion}:{d.Hash}:{d.IsTombstone}");
        }

        return string.Join("\n", docs);
    }

    private static string Summary(IEnumerable<AuditedKey> keys) => string.Join(";", keys.Select(k => $"{k.Key}:{k.Kind}:{k.Action}"));
}

public sealed class QuickDigestSqlTests
{
    [Theory]
    [InlineData(1L, 0L)]
    [InlineData(42L, 7L)]
    [InlineData(-5L, 3L)]
    [InlineData(long.MaxValue, 1_000_000_000_000L)]
    [InlineData(long.MinValue + 1, 0L)]
    [InlineData(2_147_483_647L, 2_147_483_647L)]
    public async Task Sql_expression_computes_the_same_digest_as_the_code(long key, long version)
    {
        await using var p = await Pipeline.CreateAsync();
        await using var connection = await p.SourceDb.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Rollout.Core.Reconciliation.QuickDigest.Sql("@k", "@v")}";
        command.Parameters.AddWithValue("@k", key);
        command.Parameters.AddWithValue("@v", version);

        Assert.Equal(Rollout.Core.Reconciliation.QuickDigest.Of(key, version), (long)(await command.ExecuteScalarAsync())!);
    }
}
