using System.Text.RegularExpressions;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class SqlServerSchemaCheckTests
{
    private static readonly SqlServerTableName Orders = SqlServerTableName.Parse("dbo.Orders");

    [Fact]
    public void The_check_requires_exactly_the_tables_the_set_up_script_creates()
    {
        var created = Regex.Matches(SqlServerSchema.StateTables, @"CREATE TABLE \[dbo\]\.\[(rollout_\w+)\]").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal);

        Assert.Equal(created, SqlServerSchemaCheck.RequiredTables.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_check_only_reads_the_catalog_and_takes_the_table_as_a_parameter()
    {
        var statement = SqlServerSchemaCheck.Statement(SqlServerTableName.Parse("sales.Orders"));

        SqlAssert.Parameterised(statement);
        Assert.DoesNotMatch(new Regex(@"\b(CREATE|ALTER|INSERT|UPDATE|DELETE|MERGE|DROP|EXEC)\b", RegexOptions.IgnoreCase), statement.Text);
        Assert.Equal("[sales].[Orders]", statement.Parameters.Single().Value);
    }

    [Fact]
    public void A_database_without_the_tables_tracking_or_snapshot_isolation_is_described_with_each_problem_and_the_fix()
    {
        var all = SqlServerSchemaCheck.RequiredTables.ToHashSet();
        var none = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, new HashSet<string>(), 1, snapshot: false);
        var partial = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, all.Where(t => t != "rollout_feed_failures").ToHashSet(), 2, snapshot: true);
        var noTable = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, all, 0, snapshot: true);
        var ready = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, all, 2, snapshot: true);

        Assert.False(none.IsReady);
        var message = none.Describe("Run `rollout sqlserver-script specs/orders.rollout.json` as the administrator.");
        Assert.StartsWith("sql-rollout/rollout is not set up for Rollout: missing table(s) dbo.rollout_checkpoints, dbo.rollout_feed_failures,", message, StringComparison.Ordinal);
        Assert.Contains("change tracking is off for dbo.Orders", message, StringComparison.Ordinal);
        Assert.Contains("ALLOW_SNAPSHOT_ISOLATION is off", message, StringComparison.Ordinal);
        Assert.EndsWith("Run `rollout sqlserver-script specs/orders.rollout.json` as the administrator.", message, StringComparison.Ordinal);
        Assert.Equal(["rollout_feed_failures"], partial.MissingTables);
        Assert.Contains("the source table dbo.Orders does not exist", noTable.Describe("fix"), StringComparison.Ordinal);
        Assert.True(ready.IsReady);
    }

    [Fact]
    public void A_column_an_upgrade_added_is_required_only_of_a_table_that_exists_and_the_set_up_script_adds_it()
    {
        var all = SqlServerSchemaCheck.RequiredTables.ToHashSet();
        var upgraded = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, all, 2, snapshot: true, new HashSet<string> { "rollout_reconcile_keys.first_seen" });
        var notUpgraded = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, all, 2, snapshot: true, new HashSet<string> { "rollout_reconcile_keys.at" });
        var noTable = SqlServerSchemaCheck.Report("sql-rollout/rollout", Orders, all.Where(t => t != "rollout_reconcile_keys").ToHashSet(), 2, snapshot: true, new HashSet<string>());

        Assert.True(upgraded.IsReady);
        Assert.False(notUpgraded.IsReady);
        Assert.Equal(["rollout_reconcile_keys.first_seen"], notUpgraded.MissingColumns!);
        Assert.Contains("missing column(s) dbo.rollout_reconcile_keys.first_seen", notUpgraded.Describe("fix"), StringComparison.Ordinal);
        Assert.Empty(noTable.MissingColumns!); // the missing table is reported instead
        foreach (var required in SqlServerSchemaCheck.RequiredColumns)
        {
            var (table, column) = (required[..required.IndexOf('.', StringComparison.Ordinal)], required[(required.IndexOf('.', StringComparison.Ordinal) + 1)..]);
            Assert.Contains($"IF COL_LENGTH(N'[dbo].[{table}]', N'{column}') IS NULL", SqlServerSchema.StateTables, StringComparison.Ordinal);
        }
    }
}
