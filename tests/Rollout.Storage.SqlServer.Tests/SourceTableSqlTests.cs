using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class SourceTableSqlTests
{
    private static readonly SqlServerTableName Orders = SqlServerTableName.Parse("sales.Orders");

    private static SourceTableSql Single() =>
        new(Orders, [new KeyColumn("OrderId", KeyKind.Integer)], ["CustomerId", "TotalCents", "OrderId"]);

    private static SourceTableSql Composite() =>
        new(Orders, [new KeyColumn("TenantId", KeyKind.Text), new KeyColumn("OrderId", KeyKind.Integer), new KeyColumn("Line", KeyKind.Integer)], ["Status"]);

    [Fact]
    public void Key_columns_come_first_and_each_column_is_read_once()
    {
        Assert.Equal(["OrderId", "CustomerId", "TotalCents"], Single().Columns);
        Assert.Equal(["TenantId", "OrderId", "Line", "Status"], Composite().Columns);
    }

    [Fact]
    public void The_feed_reads_net_changes_joined_to_the_table_in_version_order_without_splitting_a_version()
    {
        var sql = Composite().Changes;

        Assert.Contains("SELECT TOP (@max) WITH TIES c.[TenantId], c.[OrderId], c.[Line], c.SYS_CHANGE_VERSION, c.SYS_CHANGE_OPERATION,", sql, StringComparison.Ordinal);
        Assert.Contains("FROM CHANGETABLE(CHANGES [sales].[Orders], @after) AS c", sql, StringComparison.Ordinal);
        Assert.Contains("LEFT JOIN [sales].[Orders] AS s ON s.[TenantId] = c.[TenantId] AND s.[OrderId] = c.[OrderId] AND s.[Line] = c.[Line]", sql, StringComparison.Ordinal);
        Assert.EndsWith("ORDER BY c.SYS_CHANGE_VERSION", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void Snapshot_reads_carry_each_rows_version_from_changetable_version_and_sort_in_key_order()
    {
        var sql = Composite().SnapshotBatch(afterKey: false);

        Assert.Contains("SELECT TOP (@n) s.[TenantId], s.[OrderId], s.[Line], s.[Status], COALESCE(v.SYS_CHANGE_VERSION, 0)", sql, StringComparison.Ordinal);
        Assert.Contains("OUTER APPLY CHANGETABLE(VERSION [sales].[Orders], ([TenantId], [OrderId], [Line]), (s.[TenantId], s.[OrderId], s.[Line])) AS v", sql, StringComparison.Ordinal);
        Assert.EndsWith("ORDER BY s.[TenantId] COLLATE Latin1_General_100_BIN2, s.[OrderId], s.[Line]", sql, StringComparison.Ordinal);
        Assert.DoesNotContain("WHERE", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void The_keyset_predicate_of_a_composite_key_expands_the_row_comparison_in_key_order()
    {
        Assert.Equal(
            "((s.[TenantId] COLLATE Latin1_General_100_BIN2 > @k0)"
            + " OR (s.[TenantId] COLLATE Latin1_General_100_BIN2 = @k0 AND s.[OrderId] > @k1)"
            + " OR (s.[TenantId] COLLATE Latin1_General_100_BIN2 = @k0 AND s.[OrderId] = @k1 AND s.[Line] > @k2))",
            Composite().AfterKeyPredicate("s"));
        Assert.Equal("(s.[OrderId] > @k0)", Single().AfterKeyPredicate("s"));
        Assert.Contains("WHERE (s.[OrderId] > @k0)", Single().Versions(afterKey: true), StringComparison.Ordinal);
    }

    [Fact]
    public void A_point_read_matches_every_key_column()
    {
        Assert.Contains("WHERE s.[TenantId] = @k0 AND s.[OrderId] = @k1 AND s.[Line] = @k2", Composite().Get, StringComparison.Ordinal);
    }

    [Fact]
    public void The_quick_digest_is_the_cores_expression_over_the_integer_key_and_the_row_version()
    {
        var sql = Single().QuickDigestSegment(after: true, to: true);

        Assert.Contains(QuickDigest.MixSql("CAST(s.[OrderId] AS bigint)", "COALESCE(v.SYS_CHANGE_VERSION, 0)"), sql, StringComparison.Ordinal);
        Assert.Contains("SUM(" + QuickDigest.FromMixSql("d.x") + ")", sql, StringComparison.Ordinal);
        Assert.Contains("WHERE s.[OrderId] > @after AND s.[OrderId] <= @to", sql, StringComparison.Ordinal);
        Assert.Contains("SELECT TOP (@size)", sql, StringComparison.Ordinal);
        Assert.DoesNotContain("WHERE", Single().QuickDigestSegment(after: false, to: false), StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => Composite().QuickDigestSegment(false, false));
        Assert.Throws<InvalidOperationException>(() => new SourceTableSql(Orders, [new KeyColumn("Code", KeyKind.Text)], []).QuickDigestSegment(false, false));
    }

    [Fact]
    public void Every_statement_takes_its_values_as_parameters_and_never_in_its_text()
    {
        const string hostile = "x'); DROP TABLE [sales].[Orders];--";
        var composite = Composite();
        var key = SourceKey.From([hostile, 777001L, 913L]);
        var single = Single();

        SqlAssert.Parameterised(composite.ChangesStatement(987654321, 4242));
        SqlAssert.Parameterised(composite.SnapshotBatchStatement(key, 4242));
        SqlAssert.Parameterised(composite.SnapshotBatchStatement(null, 4242));
        SqlAssert.Parameterised(composite.VersionsStatement(key, 4242));
        SqlAssert.Parameterised(composite.GetStatement(key));
        SqlAssert.Parameterised(composite.MinValidVersionStatement());
        SqlAssert.Parameterised(single.QuickDigestStatement(555001, 4242, 555999));
        SqlAssert.Parameterised(single.QuickDigestStatement(null, 4242, null));
        Assert.Equal([hostile, 777001L, 913L], composite.GetStatement(key).Parameters.Select(p => p.Value));
    }

    [Fact]
    public void A_key_with_the_wrong_number_of_values_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Composite().GetStatement(SourceKey.From([1L])));
    }
}
