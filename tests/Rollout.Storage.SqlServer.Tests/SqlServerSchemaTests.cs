using System.Text.RegularExpressions;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class SqlServerSchemaTests
{
    [Fact]
    public void Database_set_up_turns_on_change_tracking_and_snapshot_isolation_only_when_off()
    {
        Assert.Contains("IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_databases WHERE database_id = DB_ID())", SqlServerSchema.Database, StringComparison.Ordinal);
        Assert.Contains("ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 7 DAYS, AUTO_CLEANUP = ON);", SqlServerSchema.Database, StringComparison.Ordinal);
        Assert.Contains("snapshot_isolation_state = 0)", SqlServerSchema.Database, StringComparison.Ordinal);
        Assert.Contains("ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON;", SqlServerSchema.Database, StringComparison.Ordinal);
    }

    [Fact]
    public void Table_set_up_is_guarded_by_change_tracking_tables_and_quotes_the_table()
    {
        var sql = SqlServerSchema.SourceTable(SqlServerTableName.Parse("sales.Orders"));

        Assert.Contains("IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_tables WHERE object_id = OBJECT_ID(@table))", sql, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE [sales].[Orders] ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_create_table_is_guarded()
    {
        var creates = Regex.Matches(SqlServerSchema.StateTables, "CREATE TABLE").Count;
        var guards = Regex.Matches(SqlServerSchema.StateTables, @"IF NOT EXISTS \(SELECT 1 FROM sys\.tables WHERE object_id = OBJECT_ID\(N'\[dbo\]\.\[rollout_\w+\]'\)\)\s+CREATE TABLE").Count;

        Assert.True(creates >= 2);
        Assert.Equal(creates, guards);
    }

    [Fact]
    public void The_script_declares_the_table_name_as_a_literal_and_separates_batches()
    {
        var script = SqlServerSchema.Script(SqlServerTableName.Parse("Orders"));

        Assert.Contains("DECLARE @table nvarchar(300) = N'[dbo].[Orders]';", script, StringComparison.Ordinal);
        Assert.Contains(SqlServerSchema.Database.Trim(), script, StringComparison.Ordinal);
        Assert.Equal(3, Regex.Matches(script, "^GO$", RegexOptions.Multiline).Count);
    }
}
