using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Storage.Sqlite;

namespace Rollout.Storage.SqlServer.Tests.Integration;

/// <summary>
/// The behaviours of the embedded source store's tests (ChangeFeedTests, BackfillTests, ReconciliationTests), on a real
/// SQL Server with change tracking. Versions are read back from the server after each write (one write per transaction),
/// since SQL Server numbers them database-wide.
/// </summary>
[Collection(SqlServerCollection.Name)]
public sealed class SqlServerSourceStoreTests(SqlServerDatabaseFixture db)
{
    private async Task<(SqlServerSourceStore Store, string Table)> OrdersAsync(int preexistingRows = 0)
    {
        var table = db.NewTableName();
        await db.ExecuteAsync($"CREATE TABLE dbo.{table} (OrderId int NOT NULL PRIMARY KEY, CustomerId int NULL, TotalCents bigint NULL, Status nvarchar(20) NULL)");
        for (var i = 1; i <= preexistingRows; i++)
        {
            await db.ExecuteAsync($"INSERT INTO dbo.{table} VALUES ({i}, {i % 7}, {i * 100}, N'new')");
        }

        var store = new SqlServerSourceStore(db.Connections, "dbo." + table, ["OrderId"], ["CustomerId", "TotalCents", "Status"]);
        await store.InitializeAsync();
        return (store, table);
    }

    [SqlServerFact]
    public async Task The_feed_returns_one_net_change_per_key_in_version_order_with_deletes_without_rows()
    {
        var (store, t) = await OrdersAsync();
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (1, 10, 100, N'new')");
        await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (2, 20, 200, N'new')");
        var v3 = await db.ExecuteAsync($"UPDATE dbo.{t} SET TotalCents = 150, Status = N'paid' WHERE OrderId = 1");
        var v4 = await db.ExecuteAsync($"DELETE FROM dbo.{t} WHERE OrderId = 2");

        var changes = await store.ReadChangesAsync(start, 100, CancellationToken.None);

        Assert.Equal(v4, await store.GetCurrentVersionAsync(CancellationToken.None));
        Assert.Collection(changes,
            c => Assert.Equal(("[1]", v3, ChangeOperation.Insert), (c.Key.Text, c.Version, c.Operation)),
            c => Assert.Equal(("[2]", v4, ChangeOperation.Delete), (c.Key.Text, c.Version, c.Operation)));
        Assert.True(changes[0].Row!.TryGet("TotalCents", out var cents));
        Assert.Equal(150L, cents);
        Assert.Null(changes[1].Row);
    }

    [SqlServerFact]
    public async Task A_reader_past_the_creation_sees_an_update_and_batches_respect_the_limit()
    {
        var (store, t) = await OrdersAsync();
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        var versions = new List<long>();
        for (var i = 1; i <= 5; i++)
        {
            versions.Add(await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES ({i}, 1, {i}, N'new')"));
        }

        await db.ExecuteAsync($"UPDATE dbo.{t} SET TotalCents = 99 WHERE OrderId = 1");

        var afterCreation = await store.ReadChangesAsync(versions[^1], 100, CancellationToken.None);
        var firstTwo = await store.ReadChangesAsync(start, 2, CancellationToken.None);

        Assert.Equal(ChangeOperation.Update, Assert.Single(afterCreation).Operation);
        Assert.Equal([versions[1], versions[2]], firstTwo.Select(c => c.Version));
    }

    [SqlServerFact]
    public async Task Rows_from_before_tracking_show_as_updates_and_a_deleted_then_reinserted_row_as_an_upsert()
    {
        var (store, t) = await OrdersAsync(preexistingRows: 3);
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        var v1 = await db.ExecuteAsync($"UPDATE dbo.{t} SET Status = N'x' WHERE OrderId = 1");
        await db.ExecuteAsync($"DELETE FROM dbo.{t} WHERE OrderId = 2");
        var v3 = await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (2, 2, 2, N'again')");

        var changes = await store.ReadChangesAsync(start, 100, CancellationToken.None);

        Assert.Equal([("[1]", v1, ChangeOperation.Update)], changes.Where(c => c.Key.Text == "[1]").Select(c => (c.Key.Text, c.Version, c.Operation)));
        // SQL Server documents a delete then insert of the same key as an update (SQLite's emulation says insert); both are upserts.
        var again = Assert.Single(changes, c => c.Key.Text == "[2]");
        Assert.Equal(v3, again.Version);
        Assert.NotEqual(ChangeOperation.Delete, again.Operation);
        Assert.True(again.Row!.TryGet("Status", out var status));
        Assert.Equal("again", status);
    }

    [SqlServerFact]
    public async Task Changing_a_key_deletes_the_old_key_and_creates_the_new_one()
    {
        var (store, t) = await OrdersAsync();
        var v1 = await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (1, 1, 100, N'new')");
        var v2 = await db.ExecuteAsync($"UPDATE dbo.{t} SET OrderId = 9 WHERE OrderId = 1");

        var changes = await store.ReadChangesAsync(v1, 100, CancellationToken.None);

        Assert.Equal(2, changes.Count);
        Assert.Contains(changes, c => c is { Operation: ChangeOperation.Delete } && c.Key.Text == "[1]" && c.Version == v2);
        Assert.Contains(changes, c => c is { Operation: ChangeOperation.Insert } && c.Key.Text == "[9]" && c.Version == v2);
    }

    [SqlServerFact]
    public async Task A_batch_never_ends_inside_one_transactions_version()
    {
        var (store, t) = await OrdersAsync();
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        var v = await db.ExecuteAsync($"BEGIN TRAN; INSERT INTO dbo.{t} VALUES (1, 1, 1, N'a'), (2, 2, 2, N'b'), (3, 3, 3, N'c'); COMMIT;");
        var later = await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (4, 4, 4, N'd')");

        var first = await store.ReadChangesAsync(start, 1, CancellationToken.None);
        var next = await store.ReadChangesAsync(first[^1].Version, 1, CancellationToken.None);

        Assert.Equal(3, first.Count);
        Assert.All(first, c => Assert.Equal(v, c.Version));
        Assert.Equal([("[4]", later)], next.Select(c => (c.Key.Text, c.Version)));
    }

    [SqlServerFact]
    public async Task A_rolled_back_write_leaves_no_change()
    {
        var (store, t) = await OrdersAsync();
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        await db.ExecuteAsync($"BEGIN TRAN; INSERT INTO dbo.{t} VALUES (1, 1, 1, N'x'); ROLLBACK;");

        Assert.Empty(await store.ReadChangesAsync(start, 10, CancellationToken.None));
    }

    [SqlServerFact]
    public async Task A_checkpoint_below_the_minimum_valid_version_asks_for_a_re_backfill()
    {
        var (store, t) = await OrdersAsync();
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (1, 1, 1, N'x')");
        // Truncation drops the table's change information, as if tracking had just been enabled (so does retention clean-up).
        await db.ExecuteAsync($"TRUNCATE TABLE dbo.{t}");
        var now = await store.GetCurrentVersionAsync(CancellationToken.None);

        var error = await Assert.ThrowsAsync<ChangeTrackingVersionTooOldException>(() => store.ReadChangesAsync(start, 10, CancellationToken.None));
        Assert.Equal(start, error.AfterVersion);
        Assert.True(error.MinValidVersion > start);
        Assert.Contains("re-backfill", error.Message, StringComparison.Ordinal);
        Assert.Empty(await store.ReadChangesAsync(Math.Max(now, error.MinValidVersion), 10, CancellationToken.None));
    }

    [SqlServerFact]
    public async Task Initialize_is_idempotent_and_reports_missing_tables_columns_and_other_keys()
    {
        var (store, t) = await OrdersAsync();
        await store.InitializeAsync();
        var start = await store.GetCurrentVersionAsync(CancellationToken.None);
        await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (1, 1, 1, N'x')");
        Assert.Single(await store.ReadChangesAsync(start, 10, CancellationToken.None));

        var noTable = await Assert.ThrowsAsync<InvalidOperationException>(() => new SqlServerSourceStore(db.Connections, "dbo.Missing", ["Id"], []).InitializeAsync());
        var noColumn = await Assert.ThrowsAsync<InvalidOperationException>(() => new SqlServerSourceStore(db.Connections, "dbo." + t, ["OrderId"], ["Nope"]).InitializeAsync());
        var otherKey = await Assert.ThrowsAsync<InvalidOperationException>(() => new SqlServerSourceStore(db.Connections, "dbo." + t, ["CustomerId"], []).InitializeAsync());

        Assert.Contains("does not exist", noTable.Message, StringComparison.Ordinal);
        Assert.Contains("Nope", noColumn.Message, StringComparison.Ordinal);
        Assert.Contains("not the primary key", otherKey.Message, StringComparison.Ordinal);
    }

    [SqlServerFact]
    public async Task A_backfill_snapshot_pages_in_key_order_with_each_rows_version()
    {
        var (store, t) = await OrdersAsync(preexistingRows: 7);
        var v = await db.ExecuteAsync($"UPDATE dbo.{t} SET Status = N'paid' WHERE OrderId = 3");
        var v2 = await db.ExecuteAsync($"INSERT INTO dbo.{t} VALUES (10, 1, 1, N'new')");

        var rows = new List<SnapshotRow>();
        SourceKey? after = null;
        while (true)
        {
            var batch = await store.ReadBatchAsync(after, 3, CancellationToken.None);
            if (batch.Count == 0)
            {
                break;
            }

            rows.AddRange(batch);
            after = batch[^1].Key;
        }

        Assert.Equal(8, await store.CountAsync(CancellationToken.None));
        Assert.Equal(["[1]", "[2]", "[3]", "[4]", "[5]", "[6]", "[7]", "[10]"], rows.Select(r => r.Key.Text));
        Assert.Equal([0L, 0L, v, 0L, 0L, 0L, 0L, v2], rows.Select(r => r.Version));
        Assert.True(rows[2].Row.TryGet("Status", out var status));
        Assert.Equal("paid", status);
        var versions = await store.ReadVersionsAsync(SourceKey.From([2L]), 3, CancellationToken.None);
        Assert.Equal([("[3]", v), ("[4]", 0L), ("[5]", 0L)], versions.Select(e => (e.Key.Text, e.Version)));
        Assert.Equal(v, (await store.GetAsync(SourceKey.From([3L]), CancellationToken.None))!.Version);
        Assert.Null(await store.GetAsync(SourceKey.From([99L]), CancellationToken.None));
    }

    [SqlServerFact]
    public async Task A_composite_text_and_integer_key_pages_in_binary_key_order()
    {
        var t = db.NewTableName("Lines");
        await db.ExecuteAsync($"""
            CREATE TABLE dbo.{t} (TenantId nvarchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL, Line int NOT NULL, Qty int NULL,
              CONSTRAINT PK_{t} PRIMARY KEY (TenantId, Line));
            INSERT INTO dbo.{t} VALUES (N'b', 2, 1), (N'B', 5, 1), (N'a', 10, 1), (N'A', 3, 1), (N'a', 9, 1), (N'b', 1, 1);
            """);
        var store = new SqlServerSourceStore(db.Connections, "dbo." + t, ["TenantId", "Line"], ["Qty"]);
        await store.InitializeAsync();

        var keys = new List<SourceKey>();
        SourceKey? after = null;
        while ((await store.ReadVersionsAsync(after, 2, CancellationToken.None)) is { Count: > 0 } batch)
        {
            keys.AddRange(batch.Select(e => e.Key));
            after = batch[^1].Key;
        }

        // Byte order, whatever the column's case-insensitive collation: upper case before lower case, then the integer.
        Assert.Equal(["[\"A\",3]", "[\"B\",5]", "[\"a\",9]", "[\"a\",10]", "[\"b\",1]", "[\"b\",2]"], keys.Select(k => k.Text));
        Assert.Equal(keys.Select(k => k.Sort).ToArray(), keys.Select(k => k.Sort).OrderBy(s => s, Comparer<byte[]>.Create((x, y) => SortKey.Compare(x, y))).ToArray());
        Assert.Null(await store.QuickDigestAsync(null, 10, null, CancellationToken.None));
    }

    [SqlServerFact]
    public async Task Quick_digests_are_the_cores_digest_of_each_key_and_version_segment_by_segment()
    {
        var (store, t) = await OrdersAsync(preexistingRows: 20);
        await db.ExecuteAsync($"UPDATE dbo.{t} SET Status = N'paid' WHERE OrderId IN (4, 11)");
        await db.ExecuteAsync($"DELETE FROM dbo.{t} WHERE OrderId = 7");
        var entries = await store.ReadVersionsAsync(null, 100, CancellationToken.None);

        var segments = new List<SegmentDigest>();
        SourceKey? after = null;
        while (true)
        {
            var segment = (await store.QuickDigestAsync(after, 6, SourceKey.From([17L]), CancellationToken.None))!;
            segments.Add(segment);
            if (segment.IsFinal)
            {
                break;
            }

            after = segment.Last;
        }

        var expected = entries.Where(e => e.Key.TryGetSingleInteger(out var k) && k <= 17).Select(e => (Key: long.Parse(e.Key.Text.Trim('[', ']'), System.Globalization.CultureInfo.InvariantCulture), e.Version)).ToArray();
        Assert.Equal(expected.Length, segments.Sum(s => s.Count));
        Assert.Equal(expected.Sum(e => QuickDigest.Of(e.Key, e.Version)), segments.Sum(s => s.Sum));
        Assert.Equal(SourceKey.From([17L]), segments[^1].Last);
        Assert.Equal([6L, 6L, 4L], segments.Select(s => s.Count));
    }

    [SqlServerFact]
    public async Task Quick_digests_equal_the_embedded_source_stores_for_the_same_rows()
    {
        var (store, _) = await OrdersAsync(preexistingRows: 25);
        var folder = Path.Combine(Path.GetTempPath(), "rollout-sqlserver-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var sqlite = new SqliteDatabase(Path.Combine(folder, "source.db"));
        await using (var connection = await sqlite.OpenAsync())
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT);"
                + string.Concat(Enumerable.Range(1, 25).Select(i => $"INSERT INTO Orders VALUES ({i}, {i % 7}, {i * 100}, 'new');"));
            await command.ExecuteNonQueryAsync();
        }

        var embedded = new SqliteSourceStore(sqlite, "dbo.Orders", ["OrderId"], ["CustomerId", "TotalCents", "Status"]);
        await embedded.InitializeAsync();

        foreach (var (after, size, to) in new (long?, int, long?)[] { (null, 10, null), (5, 8, null), (10, 100, 20), (20, 100, null) })
        {
            var a = after is { } x ? SourceKey.From([x]) : null;
            var b = to is { } y ? SourceKey.From([y]) : null;
            Assert.Equal(await embedded.QuickDigestAsync(a, size, b, CancellationToken.None), await store.QuickDigestAsync(a, size, b, CancellationToken.None));
        }
    }
}
