using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer.Tests.Integration;

[Collection(SqlServerCollection.Name)]
public sealed class SqlServerAuditStoreTests(SqlServerDatabaseFixture db)
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 5, 0, 0, TimeSpan.Zero);

    [SqlServerFact]
    public async Task A_run_is_started_resumed_and_finished_with_its_keys_in_key_order()
    {
        await new SqlServerStateStore(db.Connections, TimeProvider.System).InitializeAsync();
        var store = new SqlServerAuditStore(db.Connections);
        var feature = "audit-" + db.NewTableName("f").ToLowerInvariant();

        var first = await store.StartRunAsync(new ReconcileRun(0, feature, ReconcileDepth.Deep, RepairMode.Report, T0, null, null, SourceKey.From([100L]), null, ReconcileStatus.Running, new ReconcileCounts()), CancellationToken.None);
        await store.RecordKeysAsync(first, [
            new AuditedKey(SourceKey.From([20L]), DriftKind.Divergent, RepairAction.Report, 3, 3, new ContentHash(1), null, T0, null),
            new AuditedKey(SourceKey.From([3L]), DriftKind.Missing, RepairAction.Report, 2, null, null, null, T0, null),
        ], CancellationToken.None);
        // The segment is resumed: the same key again updates its record.
        await store.RecordKeysAsync(first, [new AuditedKey(SourceKey.From([20L]), DriftKind.Stale, RepairAction.Report, 4, 3, null, null, T0.AddMinutes(1), "again")], CancellationToken.None);
        await store.CompleteSegmentAsync(first, SourceKey.From([20L]), new ReconcileCounts { Compared = 20, Missing = 1, Stale = 1 }, CancellationToken.None);

        var unfinished = await store.GetUnfinishedRunAsync(feature, CancellationToken.None);
        Assert.NotNull(unfinished);
        Assert.Equal((first, "[20]", "[100]", 20L, ReconcileStatus.Running), (unfinished.Id, unfinished.LastKey?.Text, unfinished.To?.Text, unfinished.Counts.Compared, unfinished.Status));

        await store.FinishRunAsync(first, ReconcileStatus.Completed, new ReconcileCounts { Compared = 30, Missing = 1, Stale = 1 }, T0.AddMinutes(2), CancellationToken.None);
        Assert.Null(await store.GetUnfinishedRunAsync(feature, CancellationToken.None));

        var keys = await store.ListKeysAsync(first, CancellationToken.None);
        Assert.Equal([("[3]", DriftKind.Missing), ("[20]", DriftKind.Stale)], keys.Select(k => (k.Key.Text, k.Kind)));
        Assert.Equal(("again", 4L), (keys[1].Detail, keys[1].SourceVersion!.Value));

        var second = await store.StartRunAsync(new ReconcileRun(0, feature, ReconcileDepth.Quick, RepairMode.Report, T0.AddHours(1), null, null, null, null, ReconcileStatus.Running, new ReconcileCounts()), CancellationToken.None);
        await store.RecordKeysAsync(second, [new AuditedKey(SourceKey.From([3L]), DriftKind.Missing, RepairAction.Report, 2, null, null, null, T0.AddHours(1), null)], CancellationToken.None);

        // Key 3 was first reported by the first run.
        Assert.Equal(T0, await store.OldestUnresolvedSinceAsync(second, CancellationToken.None));
        // Another feature's earlier record of the same key does not count.
        var elsewhere = await store.StartRunAsync(new ReconcileRun(0, feature + "-other", ReconcileDepth.Quick, RepairMode.Report, T0.AddHours(2), null, null, null, null, ReconcileStatus.Running, new ReconcileCounts()), CancellationToken.None);
        await store.RecordKeysAsync(elsewhere, [new AuditedKey(SourceKey.From([3L]), DriftKind.Missing, RepairAction.Report, 2, null, null, null, T0.AddHours(2), null)], CancellationToken.None);
        Assert.Equal(T0.AddHours(2), await store.OldestUnresolvedSinceAsync(elsewhere, CancellationToken.None));
        var runs = await store.ListRunsAsync(feature, 10, CancellationToken.None);
        Assert.Equal([second, first], runs.Select(r => r.Id));
        Assert.Equal((ReconcileStatus.Completed, T0.AddMinutes(2), "[20]"), (runs[1].Status, runs[1].Ended!.Value, runs[1].LastKey?.Text));
        Assert.Single(await store.ListRunsAsync(feature, 1, CancellationToken.None));
        Assert.Equal(first, (await store.GetRunAsync(feature, first, CancellationToken.None))!.Id);
        Assert.Null(await store.GetRunAsync(feature + "-other", first, CancellationToken.None));
    }
}
