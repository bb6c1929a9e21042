using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>The drift age query of the embedded audit trail: its answer, and that it seeks per key rather than joining every run.</summary>
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
    public async Task Drift_age_looks_each_key_up_in_the_key_index_instead_of_scanning_every_run_of_the_feature()
    {
        await using var p = await Pipeline.CreateAsync();
        await using var connection = await p.TargetDb.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + SqliteAuditStore.OldestUnresolvedSql;
        command.Parameters.AddWithValue("@run", 1L);
        var plan = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(3));
            }
        }

        var text = string.Join(" | ", plan);
        Assert.Contains(plan, step => step.Contains("SEARCH f USING", StringComparison.Ordinal) && step.Contains("reconcile_keys_key", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, step => step.StartsWith("SCAN", StringComparison.Ordinal));
        Assert.True(plan.Count > 0, text);
    }

    [Fact]
    public async Task A_data_folder_set_up_without_the_key_index_gets_it_before_the_drift_age_query_runs()
    {
        await using var p = await Pipeline.CreateAsync();
        await using (var connection = await p.TargetDb.OpenAsync())
        await using (var drop = connection.CreateCommand())
        {
            drop.CommandText = "DROP INDEX reconcile_keys_key";
            await drop.ExecuteNonQueryAsync();
        }

        var run = await StartAsync(p.Audit, "orders-v2");
        await p.Audit.RecordKeysAsync(run, [Key(1, RepairAction.Report, T0)], CancellationToken.None);

        Assert.Equal(T0, await p.Audit.OldestUnresolvedSinceAsync(run, CancellationToken.None));
        await using var check = await p.TargetDb.OpenAsync();
        await using var command = check.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'reconcile_keys_key'";
        Assert.Equal(1L, (long)(await command.ExecuteScalarAsync())!);
    }

    private static Task<long> StartAsync(SqliteAuditStore audit, string feature) =>
        audit.StartRunAsync(new ReconcileRun(0, feature, ReconcileDepth.Quick, RepairMode.Report, T0, null, null, null, null, ReconcileStatus.Running, new ReconcileCounts()), CancellationToken.None);

    private static AuditedKey Key(long id, RepairAction action, DateTimeOffset at) =>
        new(SourceKey.From([id]), DriftKind.Stale, action, 2, 1, null, null, at, null);
}
