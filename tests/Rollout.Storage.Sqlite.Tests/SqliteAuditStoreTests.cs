using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>The embedded audit trail: drift age carried from run to run and read from the run's own records; a key recorded again updates its record.</summary>
public sealed class SqliteAuditStoreTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Drift_age_counts_from_the_first_report_of_a_key_still_unresolved_in_this_feature_only()
    {
        await using var p = await Pipeline.CreateAsync();
        var audit = p.Audit;
        var other = await StartAsync(audit, "other-feature");
        await audit.RecordKeysAsync(other, [Key(1, RepairAction.Report, T0.AddHours(-5))], CancellationToken.None); // another feature: not ours
        var first = await StartAsync(audit, "orders-v2");
        await audit.RecordKeysAsync(first, [Key(1, RepairAction.Upsert, T0.AddHours(-2)), Key(2, RepairAction.Report, T0.AddHours(-1))], CancellationToken.None);
        var between = await StartAsync(audit, "other-feature"); // another feature's run in between, which repaired its key 2: not our series
        await audit.RecordKeysAsync(between, [Key(2, RepairAction.Upsert, T0.AddMinutes(-30))], CancellationToken.None);
        var second = await StartAsync(audit, "orders-v2");
        await audit.RecordKeysAsync(second, [Key(1, RepairAction.Report, T0), Key(2, RepairAction.Report, T0), Key(3, RepairAction.Upsert, T0)], CancellationToken.None);

        // Key 2 was first reported an hour before; key 1's earlier record was a repair, and its record in the other feature does not count.
        Assert.Equal(T0.AddHours(-1), await audit.OldestUnresolvedSinceAsync(second, CancellationToken.None));
        Assert.Equal(T0.AddHours(-1), await audit.OldestUnresolvedSinceAsync(first, CancellationToken.None));
        var third = await StartAsync(audit, "orders-v2");
        await audit.RecordKeysAsync(third, [Key(3, RepairAction.Upsert, T0.AddHours(1))], CancellationToken.None);
        Assert.Null(await audit.OldestUnresolvedSinceAsync(third, CancellationToken.None)); // nothing left unresolved
    }

    [Fact]
    public async Task Drift_age_starts_again_when_a_run_in_between_found_the_key_in_step()
    {
        await using var p = await Pipeline.CreateAsync();
        var first = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(first, [Key(1, RepairAction.Report, T0)], CancellationToken.None);
        var second = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(second, [Key(2, RepairAction.Report, T0.AddMinutes(5))], CancellationToken.None); // key 1 in step
        var third = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(third, [Key(1, RepairAction.Report, T0.AddMinutes(10)), Key(2, RepairAction.Flag, T0.AddMinutes(10))], CancellationToken.None);

        // Key 2 has drifted since the second run; key 1 drifted again after being in step, so its age restarts.
        Assert.Equal(T0.AddMinutes(5), await p.Audit.OldestUnresolvedSinceAsync(third, CancellationToken.None));
        Assert.Equal(2, (await p.Audit.ListKeysAsync(third, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_quick_run_does_not_end_a_deep_runs_series_nor_a_ranged_run_the_series_of_keys_it_did_not_look_at()
    {
        await using var p = await Pipeline.CreateAsync();
        var deep = await StartAsync(p.Audit, "orders-v2", ReconcileDepth.Deep);
        await p.Audit.RecordKeysAsync(deep, [Key(1, RepairAction.Report, T0)], CancellationToken.None); // divergent: quick cannot see it
        var quick = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(quick, [Key(2, RepairAction.Report, T0.AddMinutes(5))], CancellationToken.None);
        var ranged = await StartAsync(p.Audit, "orders-v2", ReconcileDepth.Deep, from: SourceKey.From([100L]));
        await p.Audit.RecordKeysAsync(ranged, [Key(150, RepairAction.Report, T0.AddMinutes(7))], CancellationToken.None);
        var deepAgain = await StartAsync(p.Audit, "orders-v2", ReconcileDepth.Deep);
        await p.Audit.RecordKeysAsync(deepAgain, [Key(1, RepairAction.Report, T0.AddMinutes(10))], CancellationToken.None);
        var quickAgain = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(quickAgain, [Key(2, RepairAction.Report, T0.AddMinutes(15))], CancellationToken.None);

        Assert.Equal(T0, await p.Audit.OldestUnresolvedSinceAsync(deepAgain, CancellationToken.None));
        Assert.Equal(T0.AddMinutes(5), await p.Audit.OldestUnresolvedSinceAsync(quickAgain, CancellationToken.None));
    }

    [Fact]
    public async Task Drift_age_reads_only_the_runs_own_records_and_recording_a_key_seeks_the_previous_runs_record()
    {
        await using var p = await Pipeline.CreateAsync();
        await using var connection = await p.TargetDb.OpenAsync();

        var age = await PlanAsync(connection, SqliteAuditStore.OldestUnresolvedSql, ("@run", 1L));
        Assert.Equal(["SEARCH reconcile_keys USING INDEX sqlite_autoindex_reconcile_keys_1 (run_id=?)"], age);

        var carry = await PlanAsync(connection, "SELECT COALESCE(p.first_seen, p.at) FROM reconcile_keys p WHERE p.run_id = @previous AND p.sort_key = @sort AND p.action IN ('Flag', 'Report')", ("@previous", 1L), ("@sort", new byte[] { 1 }));
        Assert.Equal(["SEARCH p USING INDEX sqlite_autoindex_reconcile_keys_1 (run_id=? AND sort_key=?)"], carry);
    }

    [Fact]
    public async Task A_data_folder_from_before_drift_age_was_carried_gets_the_column_and_reads_its_old_records_by_their_time()
    {
        await using var p = await Pipeline.CreateAsync();
        var old = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(old, [Key(1, RepairAction.Report, T0)], CancellationToken.None);
        await using (var connection = await p.TargetDb.OpenAsync())
        await using (var drop = connection.CreateCommand())
        {
            // As an earlier version left it: no first_seen column.
            drop.CommandText = "ALTER TABLE reconcile_keys DROP COLUMN first_seen";
            await drop.ExecuteNonQueryAsync();
        }

        var audit = new SqliteAuditStore(p.TargetDb); // a new process: the column is checked again
        Assert.Equal(T0, await audit.OldestUnresolvedSinceAsync(old, CancellationToken.None));
        var next = await StartAsync(audit, "orders-v2");
        await audit.RecordKeysAsync(next, [Key(1, RepairAction.Report, T0.AddMinutes(5))], CancellationToken.None);
        Assert.Equal(T0, await audit.OldestUnresolvedSinceAsync(next, CancellationToken.None));
    }

    private static async Task<List<string>> PlanAsync(Microsoft.Data.Sqlite.SqliteConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        var plan = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            plan.Add(reader.GetString(3));
        }

        return plan;
    }

    [Fact]
    public async Task Keys_are_recorded_once_each_and_a_key_recorded_again_updates_its_record()
    {
        await using var p = await Pipeline.CreateAsync();
        var run = await StartAsync(p.Audit, "orders-v2");
        var count = 133;
        var keys = Enumerable.Range(1, count).Select(i => Key(i, RepairAction.Report, T0.AddSeconds(i))).ToArray();

        await p.Audit.RecordKeysAsync(run, keys, CancellationToken.None);
        await p.Audit.RecordKeysAsync(run, [], CancellationToken.None);
        // A resumed segment records some keys again, and one twice in the same call: each key keeps one record, the last.
        await p.Audit.RecordKeysAsync(run, [Key(3, RepairAction.Flag, T0.AddHours(1)), Key(count, RepairAction.Flag, T0.AddHours(1)), Key(count, RepairAction.Upsert, T0.AddHours(2))], CancellationToken.None);

        var recorded = await p.Audit.ListKeysAsync(run, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, count).Select(i => $"[{i}]"), recorded.Select(k => k.Key.Text));
        Assert.Equal((RepairAction.Flag, T0.AddHours(1)), (recorded[2].Action, recorded[2].At));
        Assert.Equal((RepairAction.Upsert, T0.AddHours(2)), (recorded[^1].Action, recorded[^1].At));
        Assert.Equal((RepairAction.Report, T0.AddSeconds(count - 1), 2L, 1L), (recorded[^2].Action, recorded[^2].At, recorded[^2].SourceVersion, recorded[^2].TargetVersion));
    }

    private static Task<long> StartAsync(SqliteAuditStore audit, string feature, ReconcileDepth depth = ReconcileDepth.Quick, SourceKey? from = null) =>
        audit.StartRunAsync(new ReconcileRun(0, feature, depth, RepairMode.Report, T0, null, from, null, from, ReconcileStatus.Running, new ReconcileCounts()), CancellationToken.None);

    private static AuditedKey Key(long id, RepairAction action, DateTimeOffset at) =>
        new(SourceKey.From([id]), DriftKind.Stale, action, 2, 1, null, null, at, null);
}
