using Microsoft.Extensions.Time.Testing;

namespace Rollout.Storage.SqlServer.Tests.Integration;

[Collection(SqlServerCollection.Name)]
public sealed class SqlServerStateStoreTests(SqlServerDatabaseFixture db)
{
    private async Task<SqlServerStateStore> StoreAsync()
    {
        var store = new SqlServerStateStore(db.Connections, new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 5, 0, 0, TimeSpan.Zero)));
        await store.InitializeAsync();
        await store.InitializeAsync();
        return store;
    }

    [SqlServerFact]
    public async Task A_checkpoint_is_null_before_the_first_save_and_never_moves_backwards()
    {
        var store = await StoreAsync();
        var name = db.NewTableName("checkpoint-");

        Assert.Null(await store.GetAsync(name, CancellationToken.None));
        await store.SaveAsync(name, 10, CancellationToken.None);
        await store.SaveAsync(name, 7, CancellationToken.None);
        Assert.Equal(10, await store.GetAsync(name, CancellationToken.None));
        await store.SaveAsync(name, 12, CancellationToken.None);
        Assert.Equal(12, await store.GetAsync(name, CancellationToken.None));
        Assert.Null(await store.GetAsync(name.ToUpperInvariant(), CancellationToken.None));
    }

    [SqlServerFact]
    public async Task Failures_are_counted_per_position_and_cleared_when_the_checkpoint_moves_past_them()
    {
        var store = await StoreAsync();
        var name = db.NewTableName("failures-");

        Assert.Null(await store.GetFailuresAsync(name, CancellationToken.None));
        Assert.Equal(1, await store.RecordFailureAsync(name, 10, "first", CancellationToken.None));
        Assert.Equal(2, await store.RecordFailureAsync(name, 10, "second", CancellationToken.None));
        var failures = await store.GetFailuresAsync(name, CancellationToken.None);
        Assert.Equal((10L, 2, "second"), (failures!.Position, failures.Attempts, failures.LastError));
        Assert.Equal(1, await store.RecordFailureAsync(name, 11, "elsewhere", CancellationToken.None));
        Assert.Equal(2, await store.RecordFailureAsync(name, 11, "again", CancellationToken.None));
        Assert.Equal(0, await store.RecordFailureAsync(name, 10, "a stale instance", CancellationToken.None));
        var current = await store.GetFailuresAsync(name, CancellationToken.None);
        Assert.Equal((11L, 2, "again"), (current!.Position, current.Attempts, current.LastError));
        await store.SaveAsync(name, 11, CancellationToken.None);
        Assert.NotNull(await store.GetFailuresAsync(name, CancellationToken.None)); // at the checkpoint: not moved past yet
        await store.SaveAsync(name, 12, CancellationToken.None);
        Assert.Null(await store.GetFailuresAsync(name, CancellationToken.None));
    }

    [SqlServerFact]
    public async Task The_schema_check_finds_an_untracked_table_and_passes_once_tracking_is_on()
    {
        await StoreAsync(); // the rollout_* tables
        var table = SqlServerTableName.Parse("dbo." + db.NewTableName("Checked"));
        var missing = await SqlServerSchemaCheck.ReadAsync(db.Connections, table, CancellationToken.None);
        await db.ExecuteAsync($"CREATE TABLE {table.Quoted} (Id int NOT NULL PRIMARY KEY)");
        var untracked = await SqlServerSchemaCheck.ReadAsync(db.Connections, table, CancellationToken.None);
        await db.ExecuteAsync($"ALTER TABLE {table.Quoted} ENABLE CHANGE_TRACKING");
        var ready = await SqlServerSchemaCheck.ReadAsync(db.Connections, table, CancellationToken.None);

        Assert.Empty(missing.MissingTables);
        Assert.False(missing.SourceTableExists);
        Assert.True(untracked.SourceTableExists);
        Assert.False(untracked.SourceTableTracked);
        Assert.True(ready.IsReady, ready.Describe("fix"));

        // A database set up before an upgrade added a column: reported, and the set-up script adds it.
        await db.ExecuteAsync("ALTER TABLE [dbo].[rollout_reconcile_keys] DROP COLUMN first_seen");
        var beforeUpgrade = await SqlServerSchemaCheck.ReadAsync(db.Connections, table, CancellationToken.None);
        await db.ExecuteAsync(SqlServerSchema.StateTables);
        var upgraded = await SqlServerSchemaCheck.ReadAsync(db.Connections, table, CancellationToken.None);
        Assert.Equal(["rollout_reconcile_keys.first_seen"], beforeUpgrade.MissingColumns!);
        Assert.True(upgraded.IsReady, upgraded.Describe("fix"));
    }

    [SqlServerFact]
    public async Task Backfill_progress_is_null_before_the_first_save_and_then_the_last_saved()
    {
        var store = await StoreAsync();
        var name = db.NewTableName("backfill-");

        Assert.Null(await store.GetBackfillAsync(name, CancellationToken.None));
        await store.SaveBackfillAsync(name, new Rollout.Core.DataPath.BackfillProgress(42, null, 0, false), CancellationToken.None);
        Assert.Equal(new Rollout.Core.DataPath.BackfillProgress(42, null, 0, false), await store.GetBackfillAsync(name, CancellationToken.None));
        var done = new Rollout.Core.DataPath.BackfillProgress(42, Rollout.Core.DataPath.SourceKey.From(["t1", 9L]), 5000, true);
        await store.SaveBackfillAsync(name, done, CancellationToken.None);
        Assert.Equal(done, await store.GetBackfillAsync(name, CancellationToken.None));
    }

    [SqlServerFact]
    public async Task A_lease_is_held_by_one_owner_until_it_expires_or_is_released()
    {
        var store = await StoreAsync();
        var name = db.NewTableName("lease-");

        Assert.True(await store.TryAcquireAsync(name, "a", TimeSpan.FromMinutes(5), CancellationToken.None));
        Assert.True(await store.TryAcquireAsync(name, "a", TimeSpan.FromMinutes(5), CancellationToken.None));
        Assert.False(await store.TryAcquireAsync(name, "b", TimeSpan.FromMinutes(5), CancellationToken.None));
        Assert.False(await store.TryAcquireAsync(name, "A", TimeSpan.FromMinutes(5), CancellationToken.None));
        await store.ReleaseAsync(name, "b", CancellationToken.None);
        Assert.False(await store.TryAcquireAsync(name, "b", TimeSpan.FromMinutes(5), CancellationToken.None));
        await store.ReleaseAsync(name, "a", CancellationToken.None);
        Assert.True(await store.TryAcquireAsync(name, "b", TimeSpan.FromMilliseconds(300), CancellationToken.None));
        Assert.False(await store.TryAcquireAsync(name, "a", TimeSpan.FromMinutes(5), CancellationToken.None));
        await Task.Delay(TimeSpan.FromMilliseconds(600));
        Assert.True(await store.TryAcquireAsync(name, "a", TimeSpan.FromMinutes(5), CancellationToken.None));
    }

    [SqlServerFact]
    public async Task Concurrent_first_acquisitions_of_a_lease_give_it_to_exactly_one_owner()
    {
        var store = await StoreAsync();
        var name = db.NewTableName("race-");

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => store.TryAcquireAsync(name, $"owner{i}", TimeSpan.FromMinutes(5), CancellationToken.None)));

        Assert.Equal(1, results.Count(r => r));
    }

    [SqlServerFact]
    public async Task The_feed_lock_excludes_a_second_session_until_released()
    {
        var resource = db.NewTableName("feedlock-");
        await using (var first = await SqlServerFeedLock.TryAcquireAsync(db.Connections, resource, TimeSpan.Zero, CancellationToken.None))
        {
            Assert.NotNull(first);
            Assert.Null(await SqlServerFeedLock.TryAcquireAsync(db.Connections, resource, TimeSpan.FromMilliseconds(200), CancellationToken.None));
        }

        await using var second = await SqlServerFeedLock.TryAcquireAsync(db.Connections, resource, TimeSpan.Zero, CancellationToken.None);
        Assert.NotNull(second);
    }
}
