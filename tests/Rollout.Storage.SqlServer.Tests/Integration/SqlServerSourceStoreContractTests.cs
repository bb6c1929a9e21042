using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Storage.Sqlite;
using Rollout.Tests.Shared;

namespace Rollout.Storage.SqlServer.Tests.Integration;

/// <summary>
/// The source-store contract on a real SQL Server with change tracking (the fixture's database has it on; each test
/// creates its own table and the store's initialization turns tracking on for it). Every contract test is overridden
/// only to carry <see cref="SqlServerFactAttribute"/>, so that without <c>SQLSERVER_CONNECTION_STRING</c> each is reported
/// as skipped with the reason (<see cref="SourceStoreContractCoverageTests"/> keeps the list complete). Versions are read
/// back from the server after each write, since SQL Server numbers them database-wide; every row a transaction changes
/// shares its version.
/// </summary>
[Collection(SqlServerCollection.Name)]
public sealed class SqlServerSourceStoreContractTests(SqlServerDatabaseFixture db) : SourceStoreContract
{
    protected override bool TransactionsShareOneVersion => true;

    protected override async Task<SourceUnderTest> NewOrdersAsync(int preexistingRows = 0)
    {
        var table = db.NewTableName();
        await db.ExecuteAsync($"CREATE TABLE dbo.{table} (OrderId int NOT NULL PRIMARY KEY, CustomerId int NULL, TotalCents bigint NULL, Status nvarchar(20) NULL)");
        for (var i = 1; i <= preexistingRows; i++)
        {
            await db.ExecuteAsync($"INSERT INTO dbo.{table} VALUES ({i}, {i % 7}, {i * 100}, N'new')");
        }

        return await TrackAsync(table, ["OrderId"], ["CustomerId", "TotalCents", "Status"]);
    }

    protected override async Task<SourceUnderTest> NewCodesAsync(params string[] codes)
    {
        var table = db.NewTableName("Codes");
        await db.ExecuteAsync($"""
            CREATE TABLE dbo.{table} (Code nvarchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL, Label nvarchar(20) NULL,
              CONSTRAINT PK_{table} PRIMARY KEY (Code));
            INSERT INTO dbo.{table} VALUES {string.Join(", ", codes.Select(c => $"(N'{c}', N'x')"))};
            """);
        return await TrackAsync(table, ["Code"], ["Label"]);
    }

    protected override async Task<SourceUnderTest> NewLinesAsync(params (string Tenant, int Line)[] rows)
    {
        var table = db.NewTableName("Lines");
        await db.ExecuteAsync($"""
            CREATE TABLE dbo.{table} (TenantId nvarchar(20) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL, Line int NOT NULL, Qty int NULL,
              CONSTRAINT PK_{table} PRIMARY KEY (TenantId, Line));
            INSERT INTO dbo.{table} VALUES {string.Join(", ", rows.Select(r => $"(N'{r.Tenant}', {r.Line}, {r.Line * 10})"))};
            """);
        return await TrackAsync(table, ["TenantId", "Line"], ["Qty"]);
    }

    protected override Task InitializeStoreAsync(SourceUnderTest source, string? table, string[] keys, string[] columns) =>
        new SqlServerSourceStore(db.Connections, table ?? source.Table, keys, columns).InitializeAsync();

    [SqlServerFact]
    public override Task The_feed_returns_one_net_change_per_key_in_version_order_with_deletes_without_rows() =>
        base.The_feed_returns_one_net_change_per_key_in_version_order_with_deletes_without_rows();

    [SqlServerFact]
    public override Task A_reader_past_the_creation_sees_an_update_and_batches_respect_the_limit() =>
        base.A_reader_past_the_creation_sees_an_update_and_batches_respect_the_limit();

    [SqlServerFact]
    public override Task Rows_from_before_tracking_show_as_updates_and_a_deleted_then_reinserted_row_as_an_upsert() =>
        base.Rows_from_before_tracking_show_as_updates_and_a_deleted_then_reinserted_row_as_an_upsert();

    [SqlServerFact]
    public override Task Changing_a_key_deletes_the_old_key_and_creates_the_new_one() =>
        base.Changing_a_key_deletes_the_old_key_and_creates_the_new_one();

    [SqlServerFact]
    public override Task A_batch_never_ends_inside_one_transactions_version() =>
        base.A_batch_never_ends_inside_one_transactions_version();

    [SqlServerFact]
    public override Task A_rolled_back_write_leaves_no_change() =>
        base.A_rolled_back_write_leaves_no_change();

    [SqlServerFact]
    public override Task Reading_again_from_a_checkpoint_returns_the_same_changes_with_the_rows_as_they_are_now() =>
        base.Reading_again_from_a_checkpoint_returns_the_same_changes_with_the_rows_as_they_are_now();

    [SqlServerFact]
    public override Task Initialize_is_idempotent_and_reports_missing_tables_and_columns() =>
        base.Initialize_is_idempotent_and_reports_missing_tables_and_columns();

    [SqlServerFact]
    public override Task Snapshot_reads_page_in_key_order_with_each_rows_version() =>
        base.Snapshot_reads_page_in_key_order_with_each_rows_version();

    [SqlServerFact]
    public override Task Version_lists_and_point_reads_carry_each_rows_version_and_leave_deleted_rows_out() =>
        base.Version_lists_and_point_reads_carry_each_rows_version_and_leave_deleted_rows_out();

    [SqlServerFact]
    public override Task Text_keys_page_in_byte_order_whatever_the_columns_collation() =>
        base.Text_keys_page_in_byte_order_whatever_the_columns_collation();

    [SqlServerFact]
    public override Task A_point_read_matches_the_key_exactly_whatever_the_columns_collation() =>
        base.A_point_read_matches_the_key_exactly_whatever_the_columns_collation();

    [SqlServerFact]
    public override Task A_composite_text_and_integer_key_pages_in_binary_key_order() =>
        base.A_composite_text_and_integer_key_pages_in_binary_key_order();

    [SqlServerFact]
    public override Task Quick_digests_are_the_cores_digest_of_each_key_and_version_segment_by_segment() =>
        base.Quick_digests_are_the_cores_digest_of_each_key_and_version_segment_by_segment();

    // SQL Server only: change tracking's minimum valid version, the primary-key check, and digests across engines.

    [SqlServerFact]
    public async Task A_checkpoint_below_the_minimum_valid_version_asks_for_a_re_backfill()
    {
        var s = await NewOrdersAsync();
        var start = await s.Feed.GetCurrentVersionAsync(Ct);
        await s.ExecuteAsync($"INSERT INTO {s.Table} VALUES (1, 1, 1, N'x')");
        // Truncation drops the table's change information, as if tracking had just been enabled (so does retention clean-up).
        await s.ExecuteAsync($"TRUNCATE TABLE {s.Table}");
        var now = await s.Feed.GetCurrentVersionAsync(Ct);

        var error = await Assert.ThrowsAsync<ChangeTrackingVersionTooOldException>(() => s.Feed.ReadChangesAsync(start, 10, Ct));
        Assert.Equal(start, error.AfterVersion);
        Assert.True(error.MinValidVersion > start);
        Assert.Contains("re-backfill", error.Message, StringComparison.Ordinal);
        Assert.Empty(await s.Feed.ReadChangesAsync(Math.Max(now, error.MinValidVersion), 10, Ct));
    }

    [SqlServerFact]
    public async Task Initialize_refuses_a_key_that_is_not_the_tables_primary_key()
    {
        var s = await NewOrdersAsync();

        var otherKey = await Assert.ThrowsAsync<InvalidOperationException>(() => InitializeStoreAsync(s, null, ["CustomerId"], []));

        Assert.Contains("not the primary key", otherKey.Message, StringComparison.Ordinal);
    }

    [SqlServerFact]
    public async Task Quick_digests_equal_the_embedded_source_stores_for_the_same_rows()
    {
        var s = await NewOrdersAsync(preexistingRows: 25);
        var folder = Path.Combine(Path.GetTempPath(), "rollout-sqlserver-tests", Guid.NewGuid().ToString("N"));
        try
        {
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
                Assert.Equal(await embedded.QuickDigestAsync(a, size, b, Ct), await s.Reader.QuickDigestAsync(a, size, b, Ct));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private async Task<SourceUnderTest> TrackAsync(string table, string[] keys, string[] columns)
    {
        var store = new SqlServerSourceStore(db.Connections, "dbo." + table, keys, columns);
        await store.InitializeAsync();
        return new SqlServerSource(db, store, "dbo." + table);
    }

    /// <summary>Writes are T-SQL batches; the version after each is read back with CHANGE_TRACKING_CURRENT_VERSION().</summary>
    private sealed class SqlServerSource(SqlServerDatabaseFixture db, SqlServerSourceStore store, string table) : SourceUnderTest
    {
        public override IChangeFeed Feed => store;

        public override IReconcileSource Reader => store;

        public override string Table => table;

        public override Task InitializeAsync() => store.InitializeAsync();

        public override Task<long> ExecuteAsync(string sql) => db.ExecuteAsync(sql);

        public override Task<long> ExecuteInOneTransactionAsync(params string[] statements) =>
            db.ExecuteAsync($"BEGIN TRAN; {string.Join("; ", statements)}; COMMIT;");

        public override Task ExecuteRolledBackAsync(string sql) => db.ExecuteAsync($"BEGIN TRAN; {sql}; ROLLBACK;");
    }
}
