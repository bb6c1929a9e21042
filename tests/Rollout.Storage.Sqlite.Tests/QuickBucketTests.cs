using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The bucket digests both embedded stores maintain with every write (triggers), which quick reconciliation compares
/// instead of computing segment digests: after any sequence of writes, by the pipeline or not, they equal the digests
/// computed from the rows, and a quick run over them finds exactly what a run that computes every digest finds.
/// </summary>
public sealed class QuickBucketTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Source_buckets_equal_the_digests_of_the_rows_after_random_writes_of_every_kind(int seed)
    {
        // Rows 1 to 300 predate change capture (version 0); keys go negative and span a dozen buckets.
        await using var p = await Pipeline.CreateAsync(preexistingRows: 300);
        var random = new Random(seed);
        for (var i = 0; i < 400; i++)
        {
            var id = random.Next(-600, 2400);
            var other = random.Next(-600, 2400);
            var sql = random.Next(9) switch
            {
                0 => "INSERT OR IGNORE INTO Orders VALUES (@id, 1, 100, 'new')",
                1 => "INSERT OR REPLACE INTO Orders VALUES (@id, 2, 200, 'replaced')",
                2 => "INSERT INTO Orders VALUES (@id, 3, 300, 'new') ON CONFLICT (OrderId) DO UPDATE SET Status = 'upserted'",
                3 => "UPDATE Orders SET Status = 'paid' WHERE OrderId = @id",
                4 => "UPDATE OR IGNORE Orders SET OrderId = @other WHERE OrderId = @id",
                5 => "DELETE FROM Orders WHERE OrderId = @id",
                6 => "UPDATE Orders SET TotalCents = TotalCents + 1 WHERE OrderId BETWEEN @id AND @id + 40",
                7 => "DELETE FROM Orders WHERE OrderId BETWEEN @id AND @id + 10",
                _ => "UPDATE Orders SET Status = Status WHERE OrderId = @id",
            };
            await p.ExecuteSourceAsync(sql, ("@id", id), ("@other", other));
            if (i == 200)
            {
                await p.Source.InitializeAsync(); // set-up again mid-way: the triggers are replaced, the sums kept
            }
        }

        var buckets = await p.Source.QuickBucketsAsync(1_000, CancellationToken.None);
        var entries = await p.Source.ReadVersionsAsync(null, 100_000, CancellationToken.None);
        var expected = entries.GroupBy(e => Integer(e.Key) >> 8)
            .Select(g => new BucketDigest(g.Key, new RangeDigest(g.Count(), g.Sum(e => QuickDigest.Of(Integer(e.Key), e.Version)), 0)))
            .OrderBy(b => b.Bucket).ToArray();

        Assert.NotNull(buckets);
        Assert.Equal(8, buckets.Bits);
        Assert.Contains(expected, b => b.Bucket < 0);
        Assert.Equal(expected, buckets.Buckets);
    }

    [Fact]
    public async Task Target_buckets_equal_the_digests_of_the_documents_after_pipeline_writes_and_writes_outside_it()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var id = -300; id <= 1500; id++)
        {
            await p.UpsertAsync(id, 1, 100, "new");
        }

        await p.Processor().DrainAsync(CancellationToken.None);
        await p.ExecuteSourceAsync("DELETE FROM Orders WHERE OrderId BETWEEN 100 AND 120"); // tombstones
        await p.ExecuteSourceAsync("UPDATE Orders SET Status = 'paid' WHERE OrderId % 7 = 0");
        await p.Processor().DrainAsync(CancellationToken.None);
        // Outside the pipeline: an edit (its write marker moves), a deletion, a revived tombstone, a version moved by hand,
        // and a copy under a key of its own.
        await p.ExecuteTargetAsync("UPDATE documents_orders SET json = '{\"edited\":true}' WHERE source_key IN ('[5]', '[-17]')");
        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE source_key IN ('[6]', '[900]')");
        await p.ExecuteTargetAsync("UPDATE documents_orders SET deleted = 0 WHERE source_key = '[110]'");
        await p.ExecuteTargetAsync("UPDATE documents_orders SET source_version = source_version + 5, etag = etag + 1, pipeline_etag = etag + 1 WHERE source_key = '[700]'");
        await p.ExecuteTargetAsync("""
            INSERT INTO documents_orders (sort_key, source_key, id, pk, source_version, hash, json, deleted, etag, pipeline_etag, digest, quick_digest)
            SELECT @sort, '[5000]', '5000', pk, source_version, hash, json, 0, 1, 1, digest, 12345 FROM documents_orders WHERE source_key = '[2]'
            """, ("@sort", SourceKey.From([5000L]).Sort));

        var buckets = await p.Target.QuickBucketsAsync(1_000, CancellationToken.None);
        var expected = new List<BucketDigest>();
        for (var bucket = -2L; bucket <= 19; bucket++)
        {
            var digest = await p.Target.QuickDigestAsync(bucket == -2 ? null : SourceKey.From([(bucket << 8) - 1]), SourceKey.From([(bucket << 8) + 255]), CancellationToken.None);
            if (digest.Count > 0)
            {
                expected.Add(new BucketDigest(bucket, digest));
            }
        }

        Assert.NotNull(buckets);
        Assert.Equal(expected, buckets.Buckets);
        Assert.Equal(3, buckets.Buckets.Sum(b => b.Digest.Tampered)); // the two edits and the revival
        Assert.Contains(buckets.Buckets, b => b.Bucket == 19); // key 5000
    }

    [Fact]
    public async Task A_quick_run_over_buckets_reads_only_the_differing_buckets_and_finds_what_a_run_computing_every_digest_finds()
    {
        await using var p = await SyncedAsync(-300, 2_699);
        await InjectAsync(p);

        var byBuckets = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report, LeafSize = 16 }, null, CancellationToken.None);
        var bySegments = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report, LeafSize = 16, UseBuckets = false }, null, CancellationToken.None);
        var found = await KeysAsync(p, byBuckets.Id);

        Assert.Equal(["[-250]:Stale", "[17]:Missing", "[1500]:Divergent", "[2699]:Stale", "[9000]:Extra"], found);
        Assert.Equal(found, await KeysAsync(p, bySegments.Id));
        Assert.Equal(bySegments.Counts.Compared, byBuckets.Counts.Compared);
        Assert.Equal(3_001, byBuckets.Counts.Compared);
        // Five differing buckets of 256 keys, each bisected down to leaves of at most 16: a few dozen entries, not 3,000.
        Assert.InRange(byBuckets.Counts.TargetRowsRead, 5, 5 * 17);
    }

    [Fact]
    public async Task A_cancelled_run_over_buckets_resumes_at_its_last_bucket_and_reaches_the_same_result()
    {
        await using var p = await SyncedAsync(-300, 2_699);
        await InjectAsync(p);
        using var cancel = new CancellationTokenSource();

        var cancelled = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, _ => cancel.Cancel(), cancel.Token);
        var resumed = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);
        var whole = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Equal(ReconcileStatus.Cancelled, cancelled.Status);
        Assert.Equal(SourceKey.From([-1L]), cancelled.LastKey); // the end of the first differing bucket (keys -256 to -1)
        Assert.Equal((cancelled.Id, ReconcileStatus.Completed), (resumed.Id, resumed.Status));
        Assert.Equal(await KeysAsync(p, whole.Id), await KeysAsync(p, resumed.Id));
        Assert.Equal(whole.Counts.Compared, resumed.Counts.Compared);
    }

    [Fact]
    public async Task A_folder_set_up_by_an_older_build_is_compared_by_segments_until_set_up_again_adds_and_fills_the_buckets()
    {
        await using var p = await SyncedAsync(1, 1_000);
        foreach (var (execute, table) in new (Func<string, Task<int>> Execute, string Table)[] { (s => p.ExecuteSourceAsync(s), "Orders__ct"), (s => p.ExecuteTargetAsync(s), "documents_orders") })
        {
            foreach (var suffix in new[] { "i", "u", "m", "d" })
            {
                await execute($"DROP TRIGGER {table.Replace("__ct", string.Empty, StringComparison.Ordinal)}__qd_{suffix}");
            }

            await execute($"DROP TABLE {table.Replace("__ct", string.Empty, StringComparison.Ordinal)}__qd");
        }

        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE source_key = '[500]'");
        var before = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);
        Assert.Null(await p.Source.QuickBucketsAsync(1_000, CancellationToken.None));
        Assert.Null(await p.Target.QuickBucketsAsync(1_000, CancellationToken.None));

        await p.Source.InitializeAsync();
        await p.Target.InitializeAsync();
        var source = await p.Source.QuickBucketsAsync(1_000, CancellationToken.None);
        var target = await p.Target.QuickBucketsAsync(1_000, CancellationToken.None);
        var after = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Equal(["[500]:Missing"], await KeysAsync(p, before.Id));
        Assert.Equal(["[500]:Missing"], await KeysAsync(p, after.Id));
        Assert.NotNull(source);
        Assert.NotNull(target);
        // Only the bucket holding key 500 differs (keys 256 to 511): one document fewer.
        var differing = source.Buckets.Zip(target.Buckets).Where(b => b.First != b.Second).ToArray();
        Assert.Equal((1L, 256L, 255L), (Assert.Single(differing).First.Bucket, differing[0].First.Digest.Count, differing[0].Second.Digest.Count));
    }

    [Fact]
    public async Task A_live_document_whose_key_is_not_a_single_integer_turns_bucket_comparison_off_and_is_found_extra()
    {
        await using var p = await SyncedAsync(1, 600);
        await p.ExecuteTargetAsync("""
            INSERT INTO documents_orders (sort_key, source_key, id, pk, source_version, hash, json, deleted, etag, pipeline_etag, digest, quick_digest)
            SELECT @sort, '["x"]', 'x', pk, source_version, hash, json, 0, 1, 1, digest, 0 FROM documents_orders WHERE source_key = '[2]'
            """, ("@sort", SourceKey.From(["x"]).Sort));

        var buckets = await p.Target.QuickBucketsAsync(1_000, CancellationToken.None);
        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Null(buckets);
        Assert.Equal(["[\"x\"]:Extra"], await KeysAsync(p, run.Id));
    }

    [Fact]
    public async Task A_source_row_removed_without_its_delete_trigger_turns_the_buckets_off_and_is_found_extra()
    {
        // SQLite's REPLACE removes a row that conflicts on another unique column without firing delete triggers when
        // recursive triggers are off (SQLite's default, and so on any connection but Rollout's): change capture misses the
        // deletion, so the buckets still count the row.
        await using var p = await SyncedWithUniqueTotalsAsync();
        await ElsewhereAsync(p.Source.Database.Path, "INSERT OR REPLACE INTO Orders VALUES (5000, 1, 500, 'new')"); // removes order 5
        await p.Processor().DrainAsync(CancellationToken.None);

        var buckets = await p.Source.QuickBucketsAsync(1_000, CancellationToken.None);
        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Null(buckets);
        Assert.Equal(["[5]:Extra"], await KeysAsync(p, run.Id));
        Assert.Equal(1_001, run.Counts.Compared); // 999 kept, 5,000 added, 5 still in the target
    }

    [Fact]
    public async Task A_replace_through_Rollouts_own_connection_fires_the_delete_triggers_so_change_capture_and_the_buckets_see_it()
    {
        await using var p = await SyncedWithUniqueTotalsAsync();
        var before = await p.Source.GetCurrentVersionAsync(CancellationToken.None);
        await p.ExecuteSourceAsync("INSERT OR REPLACE INTO Orders VALUES (5000, 1, 500, 'new')"); // removes order 5
        var changes = await p.Source.ReadChangesAsync(before, 100, CancellationToken.None);
        await p.Processor().DrainAsync(CancellationToken.None);

        var buckets = await p.Source.QuickBucketsAsync(1_000, CancellationToken.None);
        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Equal(["[5000]:Insert", "[5]:Delete"], changes.Select(c => $"{c.Key.Text}:{c.Operation}").Order(StringComparer.Ordinal));
        Assert.NotNull(buckets);
        Assert.Equal(1_000, buckets.Buckets.Sum(b => b.Digest.Count));
        Assert.Equal((0L, 1_000L), (run.Counts.Drifted, run.Counts.Compared));
    }

    [Fact]
    public async Task A_document_replaced_outside_the_pipeline_turns_the_buckets_off_until_set_up_sums_them_again()
    {
        // INSERT OR REPLACE, from a connection with SQLite's defaults (a manual fix), deletes the old document without firing
        // delete triggers: here a live document becomes a tombstone.
        await using var p = await SyncedAsync(1, 1_000);
        await ElsewhereAsync(p.TargetDb.Path, """
            INSERT OR REPLACE INTO documents_orders (sort_key, source_key, id, pk, source_version, hash, json, deleted, etag, pipeline_etag, digest, quick_digest)
            SELECT sort_key, source_key, id, pk, source_version, NULL, NULL, 1, etag + 1, etag + 1, 0, 0 FROM documents_orders WHERE source_key = '[17]'
            """);

        var before = await p.Target.QuickBucketsAsync(1_000, CancellationToken.None);
        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);
        await p.Target.InitializeAsync();
        var after = await p.Target.QuickBucketsAsync(1_000, CancellationToken.None);
        var source = await p.Source.QuickBucketsAsync(1_000, CancellationToken.None);

        Assert.Null(before);
        Assert.Equal(["[17]:Missing"], await KeysAsync(p, run.Id));
        Assert.NotNull(after);
        Assert.NotNull(source);
        // Summed again: the bucket of key 17 (keys 1 to 255) holds one live document fewer than the source's.
        Assert.Equal((255L, 254L), (source.Buckets[0].Digest.Count, after.Buckets[0].Digest.Count));
    }

    [Fact]
    public async Task A_text_value_in_an_integer_key_column_turns_the_source_buckets_off_and_its_drift_is_found()
    {
        await using var p = await Pipeline.CreateAsync(initialize: false);
        await p.ExecuteSourceAsync("DROP TABLE Orders");
        await p.ExecuteSourceAsync("CREATE TABLE Orders (OrderId BIGINT PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT)");
        await p.Source.InitializeAsync();
        await p.Target.InitializeAsync();
        await new SqliteAuditStore(p.TargetDb).InitializeAsync();
        for (var id = 1; id <= 600; id++)
        {
            await p.UpsertAsync(id, 1, 100, "new");
        }

        await p.ExecuteSourceAsync("INSERT INTO Orders VALUES ('abc', 1, 100, 'new')"); // SQLite keeps it as text
        await p.Processor().DrainAsync(CancellationToken.None);
        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE source_key = '[\"abc\"]'");

        var buckets = await p.Source.QuickBucketsAsync(1_000, CancellationToken.None);
        var run = await p.Reconciler().RunAsync(new ReconcileOptions { Mode = RepairMode.Report }, null, CancellationToken.None);

        Assert.Null(buckets);
        Assert.Equal(["[\"abc\"]:Missing"], await KeysAsync(p, run.Id));
        Assert.Equal(601, run.Counts.Compared);
    }

    /// <summary>Keys 1 to 1,000 synced, each order's total unique (100 times its key), so that a REPLACE of a new key with a taken total removes that order.</summary>
    private static async Task<Pipeline> SyncedWithUniqueTotalsAsync()
    {
        var p = await SyncedAsync(1, 1_000);
        await p.ExecuteSourceAsync("UPDATE Orders SET TotalCents = OrderId * 100");
        await p.Processor().DrainAsync(CancellationToken.None);
        await p.ExecuteSourceAsync("CREATE UNIQUE INDEX orders_total ON Orders (TotalCents)");
        return p;
    }

    /// <summary>Runs a statement on a connection of SQLite's defaults (another program's, not Rollout's).</summary>
    private static async Task ElsewhereAsync(string path, string sql)
    {
        await using var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False");
        await other.OpenAsync();
        await using var command = other.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static long Integer(SourceKey key) => key.TryGetSingleInteger(out var value) ? value : throw new InvalidOperationException($"{key.Text} is not an integer key");

    private static async Task<Pipeline> SyncedAsync(long first, long last)
    {
        var p = await Pipeline.CreateAsync();
        for (var id = first; id <= last; id++)
        {
            await p.UpsertAsync(id, id % 5, 100, "new");
        }

        await p.Processor().DrainAsync(CancellationToken.None);
        return p;
    }

    /// <summary>Drift in five buckets of the synced keys -300 to 2,699: stale (a lost change, as the pipeline would have written the
    /// older version), missing, divergent (edited outside the pipeline), stale at the last key, and an extra document.</summary>
    private static async Task InjectAsync(Pipeline p)
    {
        foreach (var id in new[] { -250L, 2699L })
        {
            await p.ExecuteTargetAsync($"""
                UPDATE documents_orders SET source_version = source_version - 1, quick_digest = {QuickDigest.Sql("@id", "(source_version - 1)")},
                  etag = etag + 1, pipeline_etag = etag + 1 WHERE source_key = @key
                """, ("@id", id), ("@key", $"[{id}]"));
        }

        await p.ExecuteTargetAsync("DELETE FROM documents_orders WHERE source_key = '[17]'");
        await p.ExecuteTargetAsync("UPDATE documents_orders SET json = '{\"edited\":true}' WHERE source_key = '[1500]'");
        await p.ExecuteTargetAsync("""
            INSERT INTO documents_orders (sort_key, source_key, id, pk, source_version, hash, json, deleted, etag, pipeline_etag, digest, quick_digest)
            SELECT @sort, '[9000]', '9000', pk, 1, hash, json, 0, 1, 1, digest, 0 FROM documents_orders WHERE source_key = '[2]'
            """, ("@sort", SourceKey.From([9000L]).Sort));
    }

    private static async Task<string[]> KeysAsync(Pipeline p, long runId) =>
        (await p.Audit.ListKeysAsync(runId, CancellationToken.None)).Select(k => $"{k.Key.Text}:{k.Kind}").ToArray();
}
