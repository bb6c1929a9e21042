using System.Globalization;
using Microsoft.Data.Sqlite;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Tests.Shared;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The source-store contract on the embedded store: a real SQLite file in a temp folder per test, change capture by the
/// store's triggers. Each row change gets a version of its own, and a row deleted and inserted again is an insert.
/// </summary>
public sealed class SqliteSourceStoreContractTests : SourceStoreContract, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
    private readonly SqliteDatabase _database;

    public SqliteSourceStoreContractTests() => _database = new SqliteDatabase(Path.Combine(_folder, "source.db"));

    protected override bool TransactionsShareOneVersion => false;

    protected override ChangeOperation? ReinsertedRowOperation => ChangeOperation.Insert;

    protected override async Task<SourceUnderTest> NewOrdersAsync(int preexistingRows = 0)
    {
        await RunAsync("CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT);"
            + string.Concat(Enumerable.Range(1, preexistingRows).Select(i => string.Create(CultureInfo.InvariantCulture, $"INSERT INTO Orders VALUES ({i}, {i % 7}, {i * 100}, 'new');"))));
        return await TrackAsync("dbo.Orders", ["OrderId"], ["CustomerId", "TotalCents", "Status"]);
    }

    protected override async Task<SourceUnderTest> NewCodesAsync(params string[] codes)
    {
        await RunAsync("CREATE TABLE Codes (Code TEXT COLLATE NOCASE PRIMARY KEY, Label TEXT)");
        foreach (var code in codes)
        {
            await RunAsync("INSERT INTO Codes VALUES (@code, 'x')", ("@code", code));
        }

        return await TrackAsync("Codes", ["Code"], ["Label"]);
    }

    protected override async Task<SourceUnderTest> NewLinesAsync(params (string Tenant, int Line)[] rows)
    {
        await RunAsync("CREATE TABLE Lines (TenantId TEXT COLLATE NOCASE NOT NULL, Line INTEGER NOT NULL, Qty INTEGER, PRIMARY KEY (TenantId, Line))");
        foreach (var (tenant, line) in rows)
        {
            await RunAsync("INSERT INTO Lines VALUES (@tenant, @line, @line * 10)", ("@tenant", tenant), ("@line", line));
        }

        return await TrackAsync("Lines", ["TenantId", "Line"], ["Qty"]);
    }

    protected override Task InitializeStoreAsync(SourceUnderTest source, string? table, string[] keys, string[] columns) =>
        new SqliteSourceStore(_database, table ?? source.Table, keys, columns).InitializeAsync();

    /// <summary>The embedded store's own numbering: one counter from zero per database, one step per row change.</summary>
    [Fact]
    public async Task Versions_count_committed_row_changes_from_zero_and_a_key_change_takes_two()
    {
        var s = await NewOrdersAsync(preexistingRows: 3);
        Assert.Equal(0, await s.Feed.GetCurrentVersionAsync(Ct));

        await s.ExecuteRolledBackAsync("INSERT INTO Orders VALUES (9, 1, 1, 'x')");
        Assert.Equal(0, await s.Feed.GetCurrentVersionAsync(Ct));
        Assert.Equal(1, await s.ExecuteAsync("UPDATE Orders SET Status = 'x' WHERE OrderId = 1"));
        Assert.Equal(3, await s.ExecuteInOneTransactionAsync("INSERT INTO Orders VALUES (4, 1, 1, 'a')", "INSERT INTO Orders VALUES (5, 1, 1, 'b')"));
        Assert.Equal(5, await s.ExecuteAsync("UPDATE Orders SET OrderId = 10 WHERE OrderId = 4"));

        var changes = await s.Feed.ReadChangesAsync(0, 100, Ct);

        Assert.Equal(
            [("[1]", 1L, ChangeOperation.Update), ("[5]", 3L, ChangeOperation.Insert), ("[4]", 4L, ChangeOperation.Delete), ("[10]", 5L, ChangeOperation.Insert)],
            changes.Select(c => (c.Key.Text, c.Version, c.Operation)));
    }

    /// <summary>Under a NOCASE key column, a change of the key's case only is still a key change (the target keys bytes).</summary>
    [Fact]
    public async Task A_key_whose_case_alone_changes_is_a_delete_of_the_old_spelling_and_an_insert_of_the_new()
    {
        var s = await NewCodesAsync("A", "b");
        var before = await s.Feed.GetCurrentVersionAsync(Ct);

        await s.ExecuteAsync("UPDATE Codes SET Code = 'a' WHERE Code = 'A'");

        var changes = await s.Feed.ReadChangesAsync(before, 100, Ct);
        Assert.Equal([("[\"A\"]", ChangeOperation.Delete), ("[\"a\"]", ChangeOperation.Insert)], changes.Select(c => (c.Key.Text, c.Operation)));
        // One row per key in a snapshot, at the new key's version (the old spelling's change row is not joined to it).
        var rows = await s.Reader.ReadBatchAsync(null, 10, Ct);
        Assert.Equal(["[\"a\"]", "[\"b\"]"], rows.Select(r => r.Key.Text));
        Assert.Equal(changes[1].Version, rows[0].Version);
        Assert.Equal(rows.Select(r => (r.Key.Text, r.Version)), (await s.Reader.ReadVersionsAsync(null, 10, Ct)).Select(e => (e.Key.Text, e.Version)));
    }

    /// <summary>The feed looks each change's row up by the source's key index, whatever the key column's collation.</summary>
    [Theory]
    [InlineData("CREATE TABLE Codes (Code TEXT COLLATE NOCASE PRIMARY KEY, Label TEXT)", "Codes", new[] { "Code" }, new[] { "Label" })]
    [InlineData("CREATE TABLE Lines (TenantId TEXT COLLATE NOCASE NOT NULL, Line INTEGER NOT NULL, Qty INTEGER, PRIMARY KEY (TenantId, Line))", "Lines", new[] { "TenantId", "Line" }, new[] { "Qty" })]
    [InlineData("CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, Status TEXT)", "Orders", new[] { "OrderId" }, new[] { "Status" })]
    public async Task The_feed_query_searches_the_source_by_its_key_and_never_scans_it(string ddl, string table, string[] keys, string[] columns)
    {
        await RunAsync(ddl);
        var store = new SqliteSourceStore(_database, table, keys, columns);
        await store.InitializeAsync();

        await using var connection = await _database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + store.ChangesSql;
        command.Parameters.AddWithValue("@after", 0L);
        command.Parameters.AddWithValue("@max", 100);
        var plan = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(3));
            }
        }

        // A binary-only join once made SQLite build an automatic index over the whole NOCASE source on every batch.
        var source = Assert.Single(plan, p => p.Contains(" s ", StringComparison.Ordinal) || p.EndsWith(" s", StringComparison.Ordinal));
        Assert.StartsWith("SEARCH s USING", source, StringComparison.Ordinal);
        Assert.DoesNotContain("AUTOMATIC", source, StringComparison.Ordinal);
    }

    private async Task<SourceUnderTest> TrackAsync(string table, string[] keys, string[] columns)
    {
        var store = new SqliteSourceStore(_database, table, keys, columns);
        await store.InitializeAsync();
        return new SqliteSource(this, store);
    }

    /// <summary>Set-up: a statement before change capture is installed.</summary>
    private async Task RunAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = await _database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> ExecuteInTransactionAsync(bool commit, IEnumerable<string> statements)
    {
        await using var connection = await _database.OpenAsync();
        await using (var transaction = connection.BeginTransaction())
        {
            foreach (var sql in statements)
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = sql;
                await command.ExecuteNonQueryAsync();
            }

            if (commit)
            {
                await transaction.CommitAsync();
            }
            else
            {
                await transaction.RollbackAsync();
            }
        }

        return await CurrentVersionAsync(connection);
    }

    /// <summary>The triggers' counter, read directly rather than through the store.</summary>
    private static async Task<long> CurrentVersionAsync(SqliteConnection connection)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT v FROM rollout_version WHERE id = 1";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the temp folder is cleaned by the OS.
        }
    }

    private sealed class SqliteSource(SqliteSourceStoreContractTests owner, SqliteSourceStore store) : SourceUnderTest
    {
        public override IChangeFeed Feed => store;

        public override IReconcileSource Reader => store;

        public override string Table => store.TableName;

        public override Task InitializeAsync() => store.InitializeAsync();

        public override Task<long> ExecuteAsync(string sql) => owner.ExecuteInTransactionAsync(commit: true, [sql]);

        public override Task<long> ExecuteInOneTransactionAsync(params string[] statements) => owner.ExecuteInTransactionAsync(commit: true, statements);

        public override Task ExecuteRolledBackAsync(string sql) => owner.ExecuteInTransactionAsync(commit: false, [sql]);
    }
}
