using Rollout.Core.DataPath;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class ChangeFeedTests
{
    [Fact]
    public async Task Every_write_gets_a_higher_version_and_the_feed_returns_net_changes_in_version_order()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 10, 100, "new");   // v1
        await p.UpsertAsync(2, 20, 200, "new");   // v2
        await p.UpsertAsync(1, 10, 150, "paid");  // v3 (update of 1)
        await p.DeleteAsync(2);                   // v4

        var changes = await p.Source.ReadChangesAsync(0, 100, CancellationToken.None);

        Assert.Equal(4, await p.Source.GetCurrentVersionAsync(CancellationToken.None));
        Assert.Collection(changes,
            c => Assert.Equal(("[1]", 3L, ChangeOperation.Insert), (c.Key.Text, c.Version, c.Operation)),
            c => Assert.Equal(("[2]", 4L, ChangeOperation.Delete), (c.Key.Text, c.Version, c.Operation)));
        Assert.True(changes[0].Row!.TryGet("TotalCents", out var cents));
        Assert.Equal(150L, cents);
        Assert.Null(changes[1].Row);
    }

    [Fact]
    public async Task A_reader_past_the_creation_sees_an_update_and_batches_respect_the_limit()
    {
        await using var p = await Pipeline.CreateAsync();
        for (var i = 1; i <= 5; i++)
        {
            await p.UpsertAsync(i, 1, i, "new");
        }

        await p.UpsertAsync(1, 1, 99, "paid"); // v6

        var afterCreation = await p.Source.ReadChangesAsync(5, 100, CancellationToken.None);
        var firstTwo = await p.Source.ReadChangesAsync(0, 2, CancellationToken.None);

        Assert.Equal(ChangeOperation.Update, Assert.Single(afterCreation).Operation);
        Assert.Equal([2L, 3L], firstTwo.Select(c => c.Version));
    }

    [Fact]
    public async Task Rows_from_before_tracking_show_as_updates_and_a_delete_then_insert_as_an_insert()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 3);
        Assert.Equal(0, await p.Source.GetCurrentVersionAsync(CancellationToken.None));
        await p.UpsertAsync(1, 1, 1, "x");      // v1 update of an untracked row
        await p.DeleteAsync(2);                 // v2
        await p.UpsertAsync(2, 2, 2, "again");  // v3 re-insert

        var changes = await p.Source.ReadChangesAsync(0, 100, CancellationToken.None);

        Assert.Equal([(1L, ChangeOperation.Update), (3L, ChangeOperation.Insert)], changes.Select(c => (c.Version, c.Operation)));
    }

    [Fact]
    public async Task Changing_a_key_deletes_the_old_key_and_creates_the_new_one()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "new");
        await p.ExecuteSourceAsync("UPDATE Orders SET OrderId = 9 WHERE OrderId = 1");

        var changes = await p.Source.ReadChangesAsync(1, 100, CancellationToken.None);

        Assert.Equal(2, changes.Count);
        Assert.Contains(changes, c => c is { Operation: ChangeOperation.Delete } && c.Key.Text == "[1]");
        Assert.Contains(changes, c => c is { Operation: ChangeOperation.Insert } && c.Key.Text == "[9]");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_key_change_reaches_the_target_whatever_the_batch_boundaries(int batchSize)
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "a");
        await p.UpsertAsync(2, 2, 200, "b");
        await p.ExecuteSourceAsync("UPDATE Orders SET OrderId = 10 WHERE OrderId = 1");

        await p.Processor(batchSize: batchSize).DrainAsync(CancellationToken.None);

        var versions = (await p.Source.ReadChangesAsync(0, 100, CancellationToken.None)).Select(c => c.Version).ToArray();
        Assert.Equal(versions.Length, versions.Distinct().Count());
        await p.AssertTargetMatchesSourceAsync($"batch {batchSize}");
    }

    [Fact]
    public async Task A_rolled_back_write_leaves_no_change()
    {
        await using var p = await Pipeline.CreateAsync();
        await using (var connection = await p.SourceDb.OpenAsync())
        {
            await using var transaction = connection.BeginTransaction();
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO Orders VALUES (1, 1, 1, 'x')";
            await command.ExecuteNonQueryAsync();
            transaction.Rollback();
        }

        Assert.Equal(0, await p.Source.GetCurrentVersionAsync(CancellationToken.None));
        Assert.Empty(await p.Source.ReadChangesAsync(0, 10, CancellationToken.None));
    }

    [Fact]
    public async Task Initialize_is_idempotent_and_reports_missing_tables_and_columns()
    {
        await using var p = await Pipeline.CreateAsync();
        await p.Source.InitializeAsync();
        await p.UpsertAsync(1, 1, 1, "x");
        Assert.Single(await p.Source.ReadChangesAsync(0, 10, CancellationToken.None));

        var noTable = new SqliteSourceStore(p.SourceDb, "dbo.Missing", ["Id"], []);
        var noColumn = new SqliteSourceStore(p.SourceDb, "Orders", ["OrderId"], ["Nope"]);

        var tableError = await Assert.ThrowsAsync<InvalidOperationException>(() => noTable.InitializeAsync());
        var columnError = await Assert.ThrowsAsync<InvalidOperationException>(() => noColumn.InitializeAsync());
        Assert.Contains("'Missing' does not exist", tableError.Message, StringComparison.Ordinal);
        Assert.Contains("Nope", columnError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snapshot_reads_in_key_order_from_a_key_with_versions()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 5);
        await p.UpsertAsync(3, 3, 3, "changed");

        var first = await p.Source.ReadBatchAsync(null, 2, CancellationToken.None);
        var rest = await p.Source.ReadBatchAsync(first[^1].Key, 10, CancellationToken.None);

        Assert.Equal(["[1]", "[2]"], first.Select(r => r.Key.Text));
        Assert.Equal(["[3]", "[4]", "[5]"], rest.Select(r => r.Key.Text));
        Assert.Equal([1L, 0L, 0L], rest.Select(r => r.Version));
        Assert.Equal(5, await p.Source.CountAsync(CancellationToken.None));
    }
}

public sealed class KeyOrderTests
{
    [Fact]
    public async Task Text_keys_are_read_in_byte_order_even_with_a_case_insensitive_collation()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
        var database = new SqliteDatabase(Path.Combine(folder, "source.db"));
        await using (var connection = await database.OpenAsync())
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = """
                CREATE TABLE Codes (Code TEXT COLLATE NOCASE PRIMARY KEY, Label TEXT);
                INSERT INTO Codes VALUES ('b', 'x'), ('A', 'x'), ('a2', 'x'), ('B1', 'x'), ('é', 'x');
                """;
            await command.ExecuteNonQueryAsync();
        }

        var store = new SqliteSourceStore(database, "Codes", ["Code"], ["Label"]);
        await store.InitializeAsync();

        var first = await store.ReadBatchAsync(null, 3, CancellationToken.None);
        var rest = await store.ReadBatchAsync(first[^1].Key, 10, CancellationToken.None);
        var keys = first.Concat(rest).Select(r => r.Key).ToArray();

        Assert.Equal(5, keys.Length);
        Assert.Equal(keys.OrderBy(k => k.Sort, Comparer<byte[]>.Create((a, b) => Rollout.Core.DataPath.SortKey.Compare(a, b))), keys);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
    }
}
