using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Time.Testing;
using Rollout.Core.DataPath;
using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Plan;
using Rollout.Core.Spec;

namespace Rollout.Storage.SqlServer.Tests.Integration;

[Collection(SqlServerCollection.Name)]
public sealed class SqlServerRolloutStoreTests(SqlServerDatabaseFixture db)
{
    private async Task<(SqlServerRolloutStore Rollout, SqlServerSourceStore Source, string Table)> StoresAsync()
    {
        var table = db.NewTableName();
        await db.ExecuteAsync($"CREATE TABLE dbo.{table} (OrderId int NOT NULL PRIMARY KEY, Status nvarchar(20) NULL)");
        var source = new SqlServerSourceStore(db.Connections, "dbo." + table, ["OrderId"], ["Status"]);
        await source.InitializeAsync();
        var rollout = new SqlServerRolloutStore(db.Connections, "dbo." + table, new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 5, 0, 0, TimeSpan.Zero)));
        await rollout.InitializeAsync();
        await rollout.InitializeAsync();
        return (rollout, source, table);
    }

    private static async Task InsertAsync(IGateUnitOfWork unit, string table, int id)
    {
        await using var command = new SqlCommand($"INSERT INTO dbo.{table} (OrderId, Status) VALUES (@id, N'new')", (SqlConnection)unit.Connection, (SqlTransaction)unit.Transaction);
        command.Parameters.AddWithValue("@id", id);
        await command.ExecuteNonQueryAsync();
    }

    [SqlServerFact]
    public async Task Setting_the_state_bumps_the_generation_and_records_history_once_per_change()
    {
        var (store, _, t) = await StoresAsync();
        var feature = "f-" + t.ToLowerInvariant();

        Assert.Equal(ExposureState.Initial(feature), await store.GetStateAsync(feature, CancellationToken.None));
        var first = await store.SetStateAsync(feature, "canary", new ExposureLevel(1000), ReadMode.Shadow, "start", CancellationToken.None);
        var again = await store.SetStateAsync(feature, "canary", new ExposureLevel(1000), ReadMode.Shadow, "retried activity", CancellationToken.None);
        var next = await store.SetStateAsync(feature, "ramp", new ExposureLevel(25000), ReadMode.Live, "phase", CancellationToken.None);

        Assert.Equal((1L, 1L, 2L), (first.Generation, again.Generation, next.Generation));
        Assert.Equal(next, await store.GetStateAsync(feature, CancellationToken.None));
        Assert.Equal(["start", "phase"], (await store.ReadStateHistoryAsync(feature)).Select(h => h.Reason));
    }

    [SqlServerFact]
    public async Task A_committed_new_path_write_records_the_exposure_and_the_version_the_target_must_reach()
    {
        var (store, source, t) = await StoresAsync();
        var feature = "f-" + t.ToLowerInvariant();
        var state = new ExposureState(feature, "canary", new ExposureLevel(1000), ReadMode.Live, 1);

        await using (var unit = await store.BeginAsync(CancellationToken.None))
        {
            await InsertAsync(unit, t, 1);
            await unit.RecordExposureAsync(feature, "customer-1", state, CancellationToken.None);
            await unit.CommitAsync(CancellationToken.None);
        }

        var row = await source.GetAsync(SourceKey.From([1L]), CancellationToken.None);
        Assert.NotNull(row);
        Assert.Equal(row.Version, await store.GetLastWriteVersionAsync(feature, "customer-1", CancellationToken.None));
        Assert.Null(await store.GetLastWriteVersionAsync(feature, "customer-2", CancellationToken.None));
        Assert.Equal(1, (await store.CountExposuresAsync(feature))["canary"]);
    }

    [SqlServerFact]
    public async Task An_uncommitted_unit_of_work_rolls_back_the_write_and_the_exposure_together()
    {
        var (store, source, t) = await StoresAsync();
        var feature = "f-" + t.ToLowerInvariant();
        var state = new ExposureState(feature, "canary", new ExposureLevel(1000), ReadMode.Live, 1);

        await using (var unit = await store.BeginAsync(CancellationToken.None))
        {
            await InsertAsync(unit, t, 1);
            await unit.RecordExposureAsync(feature, "customer-1", state, CancellationToken.None);
        }

        Assert.Null(await source.GetAsync(SourceKey.From([1L]), CancellationToken.None));
        Assert.Null(await store.GetLastWriteVersionAsync(feature, "customer-1", CancellationToken.None));
        Assert.Empty(await store.CountExposuresAsync(feature));
    }

    [SqlServerFact]
    public async Task A_write_committed_without_its_resolution_is_resolved_by_the_next_read()
    {
        var (store, source, t) = await StoresAsync();
        var feature = "f-" + t.ToLowerInvariant();
        var state = new ExposureState(feature, "canary", new ExposureLevel(1000), ReadMode.Live, 1);

        await using (var unit = await store.BeginAsync(CancellationToken.None))
        {
            await InsertAsync(unit, t, 7);
            await unit.RecordExposureAsync(feature, "customer-7", state, CancellationToken.None);
            // The process "dies" after the commit and before the unit of work resolves the version.
            await unit.Transaction.CommitAsync();
        }

        var row = await source.GetAsync(SourceKey.From([7L]), CancellationToken.None);
        Assert.Equal(row!.Version, await store.GetLastWriteVersionAsync(feature, "customer-7", CancellationToken.None));
    }

    [SqlServerFact]
    public async Task The_journal_keeps_one_copy_of_a_retried_entry_in_time_order()
    {
        var (store, _, t) = await StoresAsync();
        var feature = "j-" + t.ToLowerInvariant();
        var at = new DateTimeOffset(2026, 11, 25, 5, 0, 0, TimeSpan.Zero).AddTicks(1234567);
        var phase = new RolloutJournalEntry(feature, at, "phase", "canary", 12.345m, "exposure 12.345%", "host-1");
        var verdict = new RolloutJournalEntry(feature, at.AddSeconds(-1), "verdict", "canary", 0m, "proceed", "host-1");

        await store.AppendAsync(phase, CancellationToken.None);
        await store.AppendAsync(phase, CancellationToken.None);
        await store.AppendAsync(verdict, CancellationToken.None);
        await store.AppendAsync(phase with { Sequence = 1 }, CancellationToken.None);

        Assert.Equal([verdict, phase, phase with { Sequence = 1 }], await store.ReadAsync(feature, CancellationToken.None));
    }
}
