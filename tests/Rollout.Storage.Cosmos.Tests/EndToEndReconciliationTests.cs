using System.Text.Json.Nodes;
using Microsoft.Azure.Cosmos;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;
using Rollout.Storage.Sqlite;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// The real pipeline on both targets: one SQLite source with change capture, a dual-write processor per target (SQLite and
/// Cosmos), the same drift in both, and the core's reconciler on each: the runs find, repair and flag the same keys.
/// </summary>
public abstract class EndToEndReconciliationTests(CosmosServerFixture server) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    private const string SpecJson = """
        {
          "feature": "orders-v2",
          "source": { "table": "dbo.Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": {
            "id": { "from": "OrderId", "convert": "string" },
            "customerId": { "from": "CustomerId", "convert": "string" },
            "total": { "from": "TotalCents", "convert": "centsToDecimal" },
            "status": "Status"
          },
          "phases": [ { "name": "full", "exposure": 100, "bake": "PT1M" } ]
        }
        """;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rollout-e2e-" + Guid.NewGuid().ToString("N"));

    [TargetTheory]
    [InlineData(ReconcileDepth.Quick)]
    [InlineData(ReconcileDepth.Deep)]
    public async Task Reconciliation_finds_repairs_and_flags_the_same_keys_on_sqlite_and_cosmos(ReconcileDepth depth)
    {
        var (spec, translator, sourceDb, source, cosmosStore, sqlite, cosmos) = await TwoSidesAsync();
        // Source changes the targets have not seen: a newer row (stale in the target) and a new row (missing).
        await UpsertAsync(sourceDb, 21, 1, 5, "changed");
        await UpsertAsync(sourceDb, 41, 2, 7, "late");
        var row20 = (await source.GetAsync(SourceKey.From([20L]), CancellationToken.None))!;
        var row22 = (await source.GetAsync(SourceKey.From([22L]), CancellationToken.None))!;
        var extra = translator.Translate(SourceRow.From(new Dictionary<string, object?> { ["OrderId"] = 1000L, ["CustomerId"] = 3L, ["TotalCents"] = 1L, ["Status"] = "x" })).Document;
        foreach (var side in new[] { sqlite, cosmos })
        {
            var wrong = translator.Translate(row20.Row with { Values = [.. row20.Row.Values.Select(v => v is "new" ? "wrong" : v)] }).Document;
            await side.Target.ApplyAsync(
            [
                new TargetWrite(SourceKey.From([20L]), row20.Version, wrong, Repair: true), // divergent: same version, other content
                new TargetWrite(SourceKey.From([22L]), 1_000_000, translator.Translate(row22.Row).Document), // ahead of the source
                new TargetWrite(SourceKey.From([1000L]), 5, extra), // not in the source
            ], CancellationToken.None);
        }

        var options = new ReconcileOptions { Depth = depth, SegmentSize = 8, LeafSize = 2 };
        var onSqlite = await sqlite.Reconciler.RunAsync(options, null, CancellationToken.None);
        var onCosmos = await cosmos.Reconciler.RunAsync(options, null, CancellationToken.None);

        Assert.Equal(ReconcileStatus.Completed, onCosmos.Status);
        Assert.Equal(onSqlite.Counts with { TargetRowsRead = 0 }, onCosmos.Counts with { TargetRowsRead = 0 });
        var sqliteKeys = await Summary(sqlite, onSqlite);
        Assert.Equal(sqliteKeys, await Summary(cosmos, onCosmos));
        Assert.Contains("[1000] Extra Tombstone", sqliteKeys);
        Assert.Contains("[22] TargetAhead Flag", sqliteKeys);
        Assert.Contains("[41] Missing Upsert", sqliteKeys);
        Assert.Contains("[21] Stale Upsert", sqliteKeys);
        if (depth == ReconcileDepth.Deep)
        {
            Assert.Contains("[20] Divergent Upsert", sqliteKeys);
        }

        // After the repair both targets hold the same entries, and a second run finds only the flagged key.
        Assert.Equal(await sqlite.Ranges.ReadRangeAsync(null, null, true, CancellationToken.None), await cosmos.Ranges.ReadRangeAsync(null, null, true, CancellationToken.None));
        var again = await cosmos.Reconciler.RunAsync(options with { }, null, CancellationToken.None);
        Assert.Equal(["[22] TargetAhead Flag"], await Summary(cosmos, again));
    }

    [TargetTheory]
    [InlineData(ReconcileDepth.Quick)]
    [InlineData(ReconcileDepth.Deep)]
    public async Task With_the_pipeline_checkpoint_in_flight_changes_are_not_drift_and_lost_writes_are_on_sqlite_and_cosmos(ReconcileDepth depth)
    {
        var (spec, translator, sourceDb, source, cosmosStore, sqlite, cosmos) = await TwoSidesAsync();
        // Writes lost after the pipeline applied them (at or below its checkpoint): key 7's document deleted, key 9's
        // document left at an older version. Then changes the pipeline has not applied yet (beyond its checkpoint).
        await ExecuteAsync(sqlite.State, "DELETE FROM documents_orders WHERE source_key = '[7]'");
        await ExecuteAsync(sqlite.State, "UPDATE documents_orders SET source_version = source_version - 1 WHERE source_key = '[9]'");
        await cosmosStore.Container.DeleteItemAsync<JsonObject>("7", new PartitionKey("2"));
        var item9 = (await cosmosStore.Container.ReadItemAsync<JsonObject>("9", new PartitionKey("4"))).Resource;
        item9["_rollout"]!["version"] = (long)item9["_rollout"]!["version"]! - 1;
        await cosmosStore.Container.ReplaceItemAsync(item9, "9", new PartitionKey("4"));
        await UpsertAsync(sourceDb, 21, 1, 5, "changed");
        await UpsertAsync(sourceDb, 41, 2, 7, "late");
        var feed = DualWriteProcessor.FeedNameFor(spec.Feature);
        var options = new ReconcileOptions { Depth = depth, SegmentSize = 8, LeafSize = 2 };

        var onSqlite = await sqlite.Reconciler.RunAsync(options with { PipelineCheckpoint = ct => sqlite.Checkpoints.GetAsync(feed, ct) }, null, CancellationToken.None);
        var onCosmos = await cosmos.Reconciler.RunAsync(options with { PipelineCheckpoint = ct => cosmos.Checkpoints.GetAsync(feed, ct) }, null, CancellationToken.None);

        Assert.Equal(["[7] Missing Upsert", "[9] Stale Upsert"], await Summary(sqlite, onSqlite));
        Assert.Equal(await Summary(sqlite, onSqlite), await Summary(cosmos, onCosmos));
        Assert.Equal(onSqlite.Counts with { TargetRowsRead = 0 }, onCosmos.Counts with { TargetRowsRead = 0 });
        foreach (var side in new[] { sqlite, cosmos })
        {
            await side.Processor.DrainAsync(CancellationToken.None);
        }

        Assert.Equal(await sqlite.Ranges.ReadRangeAsync(null, null, true, CancellationToken.None), await cosmos.Ranges.ReadRangeAsync(null, null, true, CancellationToken.None));

        // Changes the pipeline applies between a segment's target read and the checkpoint read: not drift either.
        await UpsertAsync(sourceDb, 22, 2, 9, "changed");
        await UpsertAsync(sourceDb, 42, 3, 11, "late");
        var report = options with { Mode = RepairMode.Report };
        var caughtUpOnSqlite = await sqlite.Reconciler.RunAsync(report with { PipelineCheckpoint = async ct => { await sqlite.Processor.DrainAsync(ct); return await sqlite.Checkpoints.GetAsync(feed, ct); } }, null, CancellationToken.None);
        var caughtUpOnCosmos = await cosmos.Reconciler.RunAsync(report with { PipelineCheckpoint = async ct => { await cosmos.Processor.DrainAsync(ct); return await cosmos.Checkpoints.GetAsync(feed, ct); } }, null, CancellationToken.None);

        Assert.Equal((0L, 0L), (caughtUpOnSqlite.Counts.Drifted, caughtUpOnCosmos.Counts.Drifted));
    }

    /// <summary>One SQLite source of 40 orders with change capture, and a SQLite and a Cosmos side over it.</summary>
    private async Task<(RolloutSpec Spec, DocumentTranslator Translator, SqliteDatabase SourceDb, SqliteSourceStore Source, CosmosTargetStore CosmosStore, Side Sqlite, Side Cosmos)> TwoSidesAsync()
    {
        Directory.CreateDirectory(_folder);
        var spec = RolloutSpecLoader.Load(SpecJson).Spec!;
        var translator = DocumentTranslator.Compile(spec);
        var sourceDb = new SqliteDatabase(Path.Combine(_folder, "source.db"), durable: false);
        var source = SqliteSourceStore.For(sourceDb, spec, translator);
        await ExecuteAsync(sourceDb, "CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT)");
        await source.InitializeAsync();
        for (var i = 1; i <= 40; i++)
        {
            await UpsertAsync(sourceDb, i, i % 5, i * 111, "new");
        }

        var sqlite = await SideAsync("sqlite", spec, translator, source, null);
        var cosmosStore = await server.NewStoreAsync(spec.Target.PartitionKey);
        return (spec, translator, sourceDb, source, cosmosStore, sqlite, await SideAsync("cosmos", spec, translator, source, cosmosStore));
    }

    private async Task<Side> SideAsync(string name, RolloutSpec spec, DocumentTranslator translator, SqliteSourceStore source, CosmosTargetStore? cosmos)
    {
        // Checkpoints, leases, dead letters and the audit trail stay on SQLite for both sides; only the documents differ.
        var stateDb = new SqliteDatabase(Path.Combine(_folder, name + ".db"), durable: false);
        var state = new SqliteTargetStore(stateDb, spec.Target.Container, TimeProvider.System);
        await state.InitializeAsync();
        var audit = new SqliteAuditStore(stateDb);
        await audit.InitializeAsync();
        ITargetStore target = cosmos is null ? state : cosmos;
        IReconcileTarget ranges = cosmos is null ? state : cosmos;
        var processor = new DualWriteProcessor(spec.Feature, translator, source, target, state, state, state,
            new DualWriteOptions { InstanceId = name, BatchSize = 16, LeaseDuration = TimeSpan.FromSeconds(30) }, TimeProvider.System);
        await processor.DrainAsync(CancellationToken.None);
        return new Side(target, ranges, audit, new Reconciler(spec.Feature, translator, source, ranges, target, audit, TimeProvider.System), processor, state, stateDb);
    }

    private static async Task<List<string>> Summary(Side side, ReconcileRun run) =>
        [.. (await side.Audit.ListKeysAsync(run.Id, CancellationToken.None)).Select(k => $"{k.Key} {k.Kind} {k.Action}").Order(StringComparer.Ordinal)];

    private static Task UpsertAsync(SqliteDatabase db, long id, long customer, long cents, string status) =>
        ExecuteAsync(db,
            "INSERT INTO Orders (OrderId, CustomerId, TotalCents, Status) VALUES (@id, @c, @t, @s) ON CONFLICT (OrderId) DO UPDATE SET CustomerId = excluded.CustomerId, TotalCents = excluded.TotalCents, Status = excluded.Status",
            ("@id", id), ("@c", customer), ("@t", cents), ("@s", status));

    private static async Task ExecuteAsync(SqliteDatabase db, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await db.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        await server.DropContainersAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed record Side(ITargetStore Target, IReconcileTarget Ranges, SqliteAuditStore Audit, Reconciler Reconciler, DualWriteProcessor Processor,
        ICheckpointStore Checkpoints, SqliteDatabase State);
}

public sealed class EndToEndReconciliationOnLocalServer(LocalCosmosServer server) : EndToEndReconciliationTests(server), IClassFixture<LocalCosmosServer>;

[RequiresEnvironment(ConfiguredCosmosEndpoint.Variable, ConfiguredCosmosEndpoint.SkipReason)]
public sealed class EndToEndReconciliationOnCosmosEndpoint(ConfiguredCosmosEndpoint server) : EndToEndReconciliationTests(server), IClassFixture<ConfiguredCosmosEndpoint>;
