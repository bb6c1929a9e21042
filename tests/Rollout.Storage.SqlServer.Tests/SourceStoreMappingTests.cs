using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer.Tests;

/// <summary>The parts of the source store that need no server: the table check and the mapping of CHANGETABLE rows.</summary>
public sealed class SourceStoreMappingTests
{
    private static readonly SqlServerTableName Orders = SqlServerTableName.Parse("dbo.Orders");

    private static Dictionary<string, (string Type, bool InPrimaryKey)> Table(params (string Name, string Type, bool Pk)[] columns) =>
        columns.ToDictionary(c => c.Name, c => (c.Type, c.Pk), StringComparer.OrdinalIgnoreCase);

    [Fact]
    public void Key_kinds_follow_the_column_types_in_the_specs_key_order()
    {
        var sql = SqlServerSourceStore.Describe(Orders, ["TenantId", "OrderId"], ["Status"],
            Table(("OrderId", "int", true), ("TenantId", "nvarchar", true), ("Status", "varchar", false)));

        Assert.Equal([new KeyColumn("TenantId", KeyKind.Text), new KeyColumn("OrderId", KeyKind.Integer)], sql.Keys);
    }

    [Fact]
    public void A_missing_table_missing_columns_a_different_primary_key_or_an_unsortable_key_type_is_reported()
    {
        var noTable = Assert.Throws<InvalidOperationException>(() => SqlServerSourceStore.Describe(Orders, ["OrderId"], [], Table()));
        var noColumn = Assert.Throws<InvalidOperationException>(() => SqlServerSourceStore.Describe(Orders, ["OrderId"], ["Nope"], Table(("OrderId", "int", true))));
        var otherKey = Assert.Throws<InvalidOperationException>(() => SqlServerSourceStore.Describe(Orders, ["OrderId"], [],
            Table(("OrderId", "int", false), ("Id", "bigint", true))));
        var guidKey = Assert.Throws<InvalidOperationException>(() => SqlServerSourceStore.Describe(Orders, ["OrderId"], [], Table(("OrderId", "uniqueidentifier", true))));

        Assert.Contains("does not exist", noTable.Message, StringComparison.Ordinal);
        Assert.Contains("Nope", noColumn.Message, StringComparison.Ordinal);
        Assert.Contains("not the primary key", otherKey.Message, StringComparison.Ordinal);
        Assert.Contains("uniqueidentifier", guidKey.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Changetable_operations_map_to_net_changes_and_a_row_gone_since_is_a_delete()
    {
        var key = SourceKey.From([1L]);
        var row = SourceRow.From(new Dictionary<string, object?> { ["OrderId"] = 1L });

        Assert.Equal(ChangeOperation.Insert, SqlServerSourceStore.ToChange(key, 5, "I", true, row).Operation);
        Assert.Equal(ChangeOperation.Update, SqlServerSourceStore.ToChange(key, 5, "U", true, row).Operation);
        var deleted = SqlServerSourceStore.ToChange(key, 5, "D", false, null);
        Assert.Equal((ChangeOperation.Delete, (SourceRow?)null, 5L), (deleted.Operation, deleted.Row, deleted.Version));
        Assert.Equal(ChangeOperation.Delete, SqlServerSourceStore.ToChange(key, 5, "U", false, null).Operation);
        Assert.Throws<InvalidOperationException>(() => SqlServerSourceStore.ToChange(key, 5, "X", true, row));
    }

    [Fact]
    public void The_version_too_old_error_names_the_versions_and_asks_for_a_re_backfill()
    {
        var error = new ChangeTrackingVersionTooOldException("[dbo].[Orders]", 12, 40);

        Assert.Contains("[dbo].[Orders]", error.Message, StringComparison.Ordinal);
        Assert.Contains("version 12", error.Message, StringComparison.Ordinal);
        Assert.Contains("version 40", error.Message, StringComparison.Ordinal);
        Assert.Contains("re-backfill", error.Message, StringComparison.Ordinal);
    }
}
