using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class AuditSqlTests
{
    private static readonly DateTimeOffset At = new(2031, 2, 3, 4, 5, 6, TimeSpan.Zero);
    private static readonly SourceKey Hostile = SourceKey.From(["x'); DROP TABLE t;--", 777001L]);

    [Fact]
    public void Every_audit_statement_takes_its_values_as_parameters()
    {
        var run = new ReconcileRun(0, "orders-v2", ReconcileDepth.Deep, RepairMode.Auto, At, null, Hostile, SourceKey.From(["zz-top", 999001L]), null, ReconcileStatus.Running, new ReconcileCounts());
        var key = new AuditedKey(Hostile, DriftKind.Divergent, RepairAction.Upsert, 555001, 555002, new ContentHash(0xABCDEF0123456789UL), new ContentHash(0x1122334455667788UL), At, "detail text 42");
        var counts = new ReconcileCounts { Compared = 100001, Missing = 100002, Extra = 100003, Divergent = 100004, Stale = 100005, TargetAhead = 100006,
            Untranslatable = 100007, Repaired = 100008, Flagged = 100009, FetchedInFull = 100010, TargetRowsRead = 100011 };

        SqlAssert.Parameterised(AuditSql.UnfinishedRun("orders-v2"));
        SqlAssert.Parameterised(AuditSql.ListRuns("orders-v2", 4242));
        SqlAssert.Parameterised(AuditSql.GetRun("orders-v2", 123456789));
        SqlAssert.Parameterised(AuditSql.StartRun(run));
        SqlAssert.Parameterised(AuditSql.PreviousRun(123456789));
        SqlAssert.Parameterised(AuditSql.RecordKey(123456789, 123456788, key));
        SqlAssert.Parameterised(AuditSql.UpdateRun(123456789, "Running", Hostile.Text, counts, null, setLastKey: true));
        SqlAssert.Parameterised(AuditSql.UpdateRun(123456789, "Completed", null, counts, At, setLastKey: false));
        SqlAssert.Parameterised(AuditSql.ListKeys(123456789));
        SqlAssert.Parameterised(AuditSql.OldestUnresolvedSince(123456789));
    }

    [Fact]
    public void A_run_is_read_only_with_its_feature()
    {
        Assert.Contains("WHERE id = @id AND feature COLLATE Latin1_General_100_BIN2 = @feature", AuditSql.GetRun("orders-v2", 1).Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Finishing_a_run_keeps_its_resume_point_and_a_segment_keeps_its_end_time()
    {
        var finish = AuditSql.UpdateRun(1, "Completed", null, new ReconcileCounts(), At, setLastKey: false).Text;
        var segment = AuditSql.UpdateRun(1, "Running", "[5]", new ReconcileCounts(), null, setLastKey: true).Text;

        Assert.DoesNotContain("last_key", finish, StringComparison.Ordinal);
        Assert.Contains("last_key = @last,", segment, StringComparison.Ordinal);
        Assert.Contains("ended = COALESCE(@ended, ended)", segment, StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_records_each_key_once_and_a_resumed_segment_updates_it()
    {
        var sql = AuditSql.RecordKey(1, null, new AuditedKey(SourceKey.From([1L]), DriftKind.Missing, RepairAction.Upsert, 1, null, null, null, At, null)).Text;

        Assert.Contains("WHERE run_id = @run AND key_hash = @key_hash;", sql, StringComparison.Ordinal);
        Assert.Contains("IF @@ROWCOUNT = 0", sql, StringComparison.Ordinal);
    }
}
