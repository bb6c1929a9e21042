using CultureInfo = System.Globalization.CultureInfo;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;

namespace Rollout.Tests.Shared;

/// <summary>
/// What every source store must do, whatever the engine (<see cref="IChangeFeed"/> and <see cref="IReconcileSource"/>):
/// net changes per key in version order, deletes without rows, a key change as a delete and an insert, batches that never
/// end inside one transaction's version, a checkpoint that can be read from again; snapshot reads in key order with
/// keyset paging (text keys in byte order whatever their collation, composite keys), each row with its version; version
/// lists, point reads and quick digests equal to the core's. Each concrete class supplies tables of its engine; linked
/// into the SQLite and SQL Server test projects.
/// </summary>
/// <remarks>
/// The tests are virtual so that an engine that needs a server can override each with a fact attribute that skips where
/// none is configured: xunit v2 reads the overriding member's fact attribute and, since a fact allows only one, does not
/// look at the base member's then.
/// </remarks>
public abstract class SourceStoreContract
{
    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>
    /// True when every row a transaction changes shares the transaction's version (SQL Server change tracking); false
    /// when each row change has a version of its own (the embedded store's triggers).
    /// </summary>
    protected abstract bool TransactionsShareOneVersion { get; }

    /// <summary>
    /// The operation the feed reports for a row deleted and inserted again after the reader's version, where the engine
    /// defines it; null when it may be an insert or an update (both are upserts to the target).
    /// </summary>
    protected virtual ChangeOperation? ReinsertedRowOperation => null;

    /// <summary>
    /// A new table <c>Orders (OrderId integer primary key, CustomerId integer, TotalCents 64-bit integer, Status text)</c>
    /// holding rows 1..<paramref name="preexistingRows"/> as <c>(i, i % 7, i * 100, 'new')</c>, written before change
    /// tracking is turned on; then its store, initialized.
    /// </summary>
    protected abstract Task<SourceUnderTest> NewOrdersAsync(int preexistingRows = 0);

    /// <summary>A new table <c>Codes (Code text primary key, case-insensitive collation; Label text)</c> holding the codes, tracked.</summary>
    protected abstract Task<SourceUnderTest> NewCodesAsync(params string[] codes);

    /// <summary>
    /// A new table <c>Lines (TenantId text with a case-insensitive collation, Line integer, Qty integer)</c> keyed by
    /// <c>(TenantId, Line)</c>, holding the rows with <c>Qty = Line * 10</c>, tracked.
    /// </summary>
    protected abstract Task<SourceUnderTest> NewLinesAsync(params (string Tenant, int Line)[] rows);

    /// <summary>
    /// Creates and initializes another store of the engine on the database of <paramref name="source"/>: over
    /// <paramref name="table"/> (a spec name such as <c>dbo.Missing</c>; null for the source's own table).
    /// </summary>
    protected abstract Task InitializeStoreAsync(SourceUnderTest source, string? table, string[] keys, string[] columns);

    [Fact]
    public virtual async Task The_feed_returns_one_net_change_per_key_in_version_order_with_deletes_without_rows()
    {
        var s = await NewOrdersAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        var v1 = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (1, 10, 100, 'new')");
        var v2 = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (2, 20, 200, 'new')");
        var v3 = await s.ExecuteAsync($"UPDATE {s.Table} SET TotalCents = 150, Status = 'paid' WHERE OrderId = 1");
        var v4 = await s.ExecuteAsync($"DELETE FROM {s.Table} WHERE OrderId = 2");

        var changes = await s.Feed.ReadChangesAsync(start, 100, Ct);

        Assert.True(start < v1 && v1 < v2 && v2 < v3 && v3 < v4, $"every write gets a higher version: {start}, {v1}, {v2}, {v3}, {v4}");
        Assert.Equal(v4, await s.Feed.GetCurrentVersionAsync(Ct));
        Assert.Collection(changes,
            c => Assert.Equal(("[1]", v3, ChangeOperation.Insert), (c.Key.Text, c.Version, c.Operation)),
            c => Assert.Equal(("[2]", v4, ChangeOperation.Delete), (c.Key.Text, c.Version, c.Operation)));
        Assert.True(changes[0].Row!.TryGet("TotalCents", out var cents));
        Assert.Equal(150L, cents);
        Assert.Null(changes[1].Row);
    }

    [Fact]
    public virtual async Task A_reader_past_the_creation_sees_an_update_and_batches_respect_the_limit()
    {
        var s = await NewOrdersAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        var versions = new List<long>();
        for (var i = 1; i <= 5; i++)
        {
            versions.Add(await s.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"INSERT INTO {s.Table} VALUES ({i}, 1, {i}, 'new')")));
        }

        await s.ExecuteAsync($"UPDATE {s.Table} SET TotalCents = 99 WHERE OrderId = 1");

        var afterCreation = await s.Feed.ReadChangesAsync(versions[^1], 100, Ct);
        var firstTwo = await s.Feed.ReadChangesAsync(start, 2, Ct);

        Assert.Equal(ChangeOperation.Update, Assert.Single(afterCreation).Operation);
        Assert.Equal([versions[1], versions[2]], firstTwo.Select(c => c.Version));
    }

    [Fact]
    public virtual async Task Rows_from_before_tracking_show_as_updates_and_a_deleted_then_reinserted_row_as_an_upsert()
    {
        var s = await NewOrdersAsync(preexistingRows: 3);
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        var v1 = await s.ExecuteAsync($"UPDATE {s.Table} SET Status = 'x' WHERE OrderId = 1");
        await s.ExecuteAsync($"DELETE FROM {s.Table} WHERE OrderId = 2");
        var v3 = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (2, 2, 2, 'again')");

        var changes = await s.Feed.ReadChangesAsync(start, 100, Ct);

        Assert.Equal([("[1]", v1), ("[2]", v3)], changes.Select(c => (c.Key.Text, c.Version)));
        Assert.Equal(ChangeOperation.Update, changes[0].Operation);
        var again = changes[1];
        Assert.NotEqual(ChangeOperation.Delete, again.Operation);
        if (ReinsertedRowOperation is { } expected)
        {
            Assert.Equal(expected, again.Operation);
        }

        Assert.True(again.Row!.TryGet("Status", out var status));
        Assert.Equal("again", status);
    }

    [Fact]
    public virtual async Task Changing_a_key_deletes_the_old_key_and_creates_the_new_one()
    {
        var s = await NewOrdersAsync();
        var v1 = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (1, 1, 100, 'new')");
        var v2 = await s.ExecuteAsync($"UPDATE {s.Table} SET OrderId = 9 WHERE OrderId = 1");

        var changes = await s.Feed.ReadChangesAsync(v1, 100, Ct);

        Assert.Equal(2, changes.Count);
        var deleted = Assert.Single(changes, c => c.Key.Text == "[1]");
        var created = Assert.Single(changes, c => c.Key.Text == "[9]");
        Assert.Equal(ChangeOperation.Delete, deleted.Operation);
        Assert.Null(deleted.Row);
        Assert.Equal(ChangeOperation.Insert, created.Operation);
        Assert.True(created.Row!.TryGet("TotalCents", out var cents));
        Assert.Equal(100L, cents);
        if (TransactionsShareOneVersion)
        {
            Assert.Equal((v2, v2), (deleted.Version, created.Version));
        }
        else
        {
            // Each row change has its own version, so a batch boundary can never fall between the two halves' versions.
            Assert.True(v1 < deleted.Version && deleted.Version < created.Version, $"v1 {v1}, delete {deleted.Version}, insert {created.Version}");
            Assert.Equal(v2, created.Version);
        }
    }

    [Fact]
    public virtual async Task A_batch_never_ends_inside_one_transactions_version()
    {
        var s = await NewOrdersAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        var v = await s.ExecuteInOneTransactionAsync(
            $"INSERT INTO {s.Table} VALUES (1, 1, 1, 'a')", $"INSERT INTO {s.Table} VALUES (2, 2, 2, 'b')", $"INSERT INTO {s.Table} VALUES (3, 3, 3, 'c')");
        var later = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (4, 4, 4, 'd')");

        // A consumer with a batch size of one, checkpointing the last version of each batch.
        var batches = new List<IReadOnlyList<SourceChange>>();
        var checkpoint = start;
        while (batches.Count < 10 && await s.Feed.ReadChangesAsync(checkpoint, 1, Ct) is { Count: > 0 } batch)
        {
            batches.Add(batch);
            checkpoint = batch[^1].Version;
        }

        Assert.Equal(["[1]", "[2]", "[3]", "[4]"], batches.SelectMany(b => b).Select(c => c.Key.Text).Order(StringComparer.Ordinal));
        Assert.Equal([("[4]", later)], batches[^1].Select(c => (c.Key.Text, c.Version)));
        if (TransactionsShareOneVersion)
        {
            Assert.Equal(2, batches.Count);
            Assert.Equal(3, batches[0].Count);
            Assert.All(batches[0], c => Assert.Equal(v, c.Version));
        }
        else
        {
            Assert.Equal(4, batches.Count);
            Assert.All(batches, b => Assert.Single(b));
            Assert.Equal(v, batches[2][0].Version);
        }
    }

    [Fact]
    public virtual async Task A_rolled_back_write_leaves_no_change()
    {
        var s = await NewOrdersAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);

        await s.ExecuteRolledBackAsync($"INSERT INTO {s.Table} VALUES (1, 1, 1, 'x')");

        Assert.Empty(await s.Feed.ReadChangesAsync(start, 10, Ct));
        Assert.Equal(0, await s.Reader.CountAsync(Ct));
    }

    [Fact]
    public virtual async Task Reading_again_from_a_checkpoint_returns_the_same_changes_with_the_rows_as_they_are_now()
    {
        var s = await NewOrdersAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (1, 10, 100, 'new')");
        var v2 = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (2, 20, 200, 'new')");

        var first = Describe(await s.Feed.ReadChangesAsync(start, 100, Ct));
        var again = Describe(await s.Feed.ReadChangesAsync(start, 100, Ct));
        var v3 = await s.ExecuteAsync($"UPDATE {s.Table} SET TotalCents = 111 WHERE OrderId = 1");
        var replay = Describe(await s.Feed.ReadChangesAsync(start, 100, Ct));

        Assert.Equal(first, again);
        // A consumer that crashed before saving its checkpoint reads from the old one: each key once, at its latest version.
        Assert.Equal([("[2]", v2, ChangeOperation.Insert, (long?)200), ("[1]", v3, ChangeOperation.Insert, 111)], replay);
        Assert.Equal([("[1]", v3, ChangeOperation.Update, (long?)111)], Describe(await s.Feed.ReadChangesAsync(v2, 100, Ct)));
        Assert.Empty(await s.Feed.ReadChangesAsync(v3, 100, Ct));
    }

    [Fact]
    public virtual async Task Initialize_is_idempotent_and_reports_missing_tables_and_columns()
    {
        var s = await NewOrdersAsync();
        await s.InitializeAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (1, 1, 1, 'x')");
        Assert.Single(await s.Feed.ReadChangesAsync(start, 10, Ct));

        var noTable = await Assert.ThrowsAsync<InvalidOperationException>(() => InitializeStoreAsync(s, "dbo.Missing", ["Id"], []));
        var noColumn = await Assert.ThrowsAsync<InvalidOperationException>(() => InitializeStoreAsync(s, null, ["OrderId"], ["Nope"]));

        Assert.Contains("Missing", noTable.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", noTable.Message, StringComparison.Ordinal);
        Assert.Contains("Nope", noColumn.Message, StringComparison.Ordinal);
    }

    [Fact]
    public virtual async Task Snapshot_reads_page_in_key_order_with_each_rows_version()
    {
        var s = await NewOrdersAsync(preexistingRows: 7);
        var v = await s.ExecuteAsync($"UPDATE {s.Table} SET Status = 'paid' WHERE OrderId = 3");
        var v2 = await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (10, 1, 1, 'new')");

        var batches = await ReadAllAsync(s.Reader.ReadBatchAsync, 3, r => r.Key);
        var rows = batches.SelectMany(b => b).ToList();

        Assert.Equal(8, await s.Reader.CountAsync(Ct));
        Assert.Equal([3, 3, 2], batches.Select(b => b.Count));
        Assert.Equal(["[1]", "[2]", "[3]", "[4]", "[5]", "[6]", "[7]", "[10]"], rows.Select(r => r.Key.Text));
        Assert.Equal([0L, 0L, v, 0L, 0L, 0L, 0L, v2], rows.Select(r => r.Version));
        Assert.True(rows[2].Row.TryGet("Status", out var status));
        Assert.Equal("paid", status);
    }

    [Fact]
    public virtual async Task Version_lists_and_point_reads_carry_each_rows_version_and_leave_deleted_rows_out()
    {
        var s = await NewOrdersAsync(preexistingRows: 7);
        var v = await s.ExecuteAsync($"UPDATE {s.Table} SET Status = 'paid' WHERE OrderId = 3");
        await s.ExecuteAsync($"DELETE FROM {s.Table} WHERE OrderId = 6");

        var versions = await s.Reader.ReadVersionsAsync(SourceKey.From([2L]), 3, Ct);
        var rest = await s.Reader.ReadVersionsAsync(SourceKey.From([5L]), 10, Ct);
        var three = await s.Reader.GetAsync(SourceKey.From([3L]), Ct);

        Assert.Equal([("[3]", v), ("[4]", 0L), ("[5]", 0L)], versions.Select(e => (e.Key.Text, e.Version)));
        Assert.Equal([("[7]", 0L)], rest.Select(e => (e.Key.Text, e.Version)));
        Assert.Equal((SourceKey.From([3L]), v), (three!.Key, three.Version));
        Assert.True(three.Row.TryGet("Status", out var status));
        Assert.Equal("paid", status);
        Assert.Equal(0, (await s.Reader.GetAsync(SourceKey.From([4L]), Ct))!.Version);
        Assert.Null(await s.Reader.GetAsync(SourceKey.From([6L]), Ct));
        Assert.Null(await s.Reader.GetAsync(SourceKey.From([99L]), Ct));
        Assert.Equal(6, await s.Reader.CountAsync(Ct));
    }

    [Fact]
    public virtual async Task Text_keys_page_in_byte_order_whatever_the_columns_collation()
    {
        var s = await NewCodesAsync("b", "A", "a2", "B1", "é");

        var rows = (await ReadAllAsync(s.Reader.ReadBatchAsync, 3, r => r.Key)).SelectMany(b => b).Select(r => r.Key).ToArray();
        var entries = (await ReadAllAsync(s.Reader.ReadVersionsAsync, 2, e => e.Key)).SelectMany(b => b).Select(e => e.Key).ToArray();

        // Byte order (what SortKey encodes): upper case before lower case, non-ASCII last.
        Assert.Equal(["A", "B1", "a2", "b", "é"], rows.Select(k => (string)k.Values()[0]!));
        Assert.Equal(rows, entries);
        Assert.Equal(rows.OrderBy(k => k.Sort, SortOrder), rows);
        Assert.Null(await s.Reader.QuickDigestAsync(null, 10, null, Ct));
    }

    [Fact]
    public virtual async Task A_point_read_matches_the_key_exactly_whatever_the_columns_collation()
    {
        var s = await NewCodesAsync("A", "b");

        // The column compares case-insensitively, but "a" is not the key "A" (nor "B" the key "b"), as the target sees keys.
        Assert.Equal("[\"A\"]", (await s.Reader.GetAsync(SourceKey.From(["A"]), Ct))?.Key.Text);
        Assert.Equal("[\"b\"]", (await s.Reader.GetAsync(SourceKey.From(["b"]), Ct))?.Key.Text);
        Assert.Null(await s.Reader.GetAsync(SourceKey.From(["a"]), Ct));
        Assert.Null(await s.Reader.GetAsync(SourceKey.From(["B"]), Ct));
    }

    [Fact]
    public virtual async Task A_composite_text_and_integer_key_pages_in_binary_key_order()
    {
        var s = await NewLinesAsync(("b", 2), ("B", 5), ("a", 10), ("A", 3), ("a", 9), ("b", 1));

        var entries = (await ReadAllAsync(s.Reader.ReadVersionsAsync, 2, e => e.Key)).SelectMany(b => b).Select(e => e.Key).ToArray();
        var rows = (await ReadAllAsync(s.Reader.ReadBatchAsync, 4, r => r.Key)).SelectMany(b => b).ToArray();
        var nine = await s.Reader.GetAsync(SourceKey.From(["a", 9L]), Ct);

        // Byte order, whatever the column's case-insensitive collation: upper case before lower case, then the integer.
        Assert.Equal(["[\"A\",3]", "[\"B\",5]", "[\"a\",9]", "[\"a\",10]", "[\"b\",1]", "[\"b\",2]"], entries.Select(k => k.Text));
        Assert.Equal(entries.OrderBy(k => k.Sort, SortOrder), entries);
        Assert.Equal(entries, rows.Select(r => r.Key));
        Assert.Equal("[\"a\",9]", nine!.Key.Text);
        Assert.True(nine.Row.TryGet("Qty", out var qty));
        Assert.Equal(90L, Convert.ToInt64(qty, CultureInfo.InvariantCulture));
        Assert.Null(await s.Reader.QuickDigestAsync(null, 10, null, Ct));
    }

    [Fact]
    public virtual async Task Quick_digests_are_the_cores_digest_of_each_key_and_version_segment_by_segment()
    {
        var s = await NewOrdersAsync(preexistingRows: 20);
        await s.ExecuteAsync($"UPDATE {s.Table} SET Status = 'paid' WHERE OrderId IN (4, 11)");
        await s.ExecuteAsync($"DELETE FROM {s.Table} WHERE OrderId = 7");
        var entries = await s.Reader.ReadVersionsAsync(null, 100, Ct);

        var segments = new List<SegmentDigest>();
        SourceKey? after = null;
        while (segments.Count < 10)
        {
            var segment = (await s.Reader.QuickDigestAsync(after, 6, SourceKey.From([17L]), Ct))!;
            segments.Add(segment);
            if (segment.IsFinal)
            {
                break;
            }

            after = segment.Last;
        }

        var expected = entries
            .Select(e => (Key: e.Key.TryGetSingleInteger(out var k) ? k : throw new InvalidOperationException(e.Key.Text), e.Version))
            .Where(e => e.Key <= 17).ToArray();
        Assert.Equal(2, expected.Count(e => e.Version > 0));
        Assert.Equal(expected.Length, segments.Sum(x => x.Count));
        Assert.Equal(expected.Sum(e => QuickDigest.Of(e.Key, e.Version)), segments.Sum(x => x.Sum));
        Assert.Equal(SourceKey.From([17L]), segments[^1].Last);
        Assert.Equal([6L, 6L, 4L], segments.Select(x => x.Count));
    }

    private static readonly Comparer<byte[]> SortOrder = Comparer<byte[]>.Create((x, y) => SortKey.Compare(x, y));

    private static (string Key, long Version, ChangeOperation Operation, long? TotalCents)[] Describe(IReadOnlyList<SourceChange> changes) =>
        changes.Select(c => (c.Key.Text, c.Version, c.Operation, c.Row is not null && c.Row.TryGet("TotalCents", out var cents) ? Convert.ToInt64(cents, CultureInfo.InvariantCulture) : (long?)null)).ToArray();

    /// <summary>Pages through a key-ordered read, each page after the last key of the one before, until an empty page.</summary>
    private static async Task<List<IReadOnlyList<T>>> ReadAllAsync<T>(Func<SourceKey?, int, CancellationToken, Task<IReadOnlyList<T>>> read, int size, Func<T, SourceKey> key)
    {
        var pages = new List<IReadOnlyList<T>>();
        SourceKey? after = null;
        while (pages.Count < 100 && await read(after, size, Ct) is { Count: > 0 } page)
        {
            pages.Add(page);
            after = key(page[^1]);
        }

        return pages;
    }
}

/// <summary>A table of the engine under test, its store, and the means to write to it as an application would.</summary>
public abstract class SourceUnderTest
{
    /// <summary>The store's change feed.</summary>
    public abstract IChangeFeed Feed { get; }

    /// <summary>The same store's key-ordered reads.</summary>
    public abstract IReconcileSource Reader { get; }

    /// <summary>The table's name in the engine's SQL.</summary>
    public abstract string Table { get; }

    /// <summary>Runs the store's initialization again.</summary>
    public abstract Task InitializeAsync();

    /// <summary>Runs one statement in a transaction of its own; returns the current version after it committed.</summary>
    public abstract Task<long> ExecuteAsync(string sql);

    /// <summary>Runs statements in one transaction; returns the current version after it committed.</summary>
    public abstract Task<long> ExecuteInOneTransactionAsync(params string[] statements);

    /// <summary>Runs one statement in a transaction that is then rolled back.</summary>
    public abstract Task ExecuteRolledBackAsync(string sql);
}
