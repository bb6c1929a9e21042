using Microsoft.Extensions.Logging.Abstractions;
using Rollout.Storage.SqlServer;

namespace Rollout.Functions.Tests;

/// <summary>
/// The start-up check of the Azure SQL set-up. No SQL Server runs here: the catalog read is exercised by the adapter's
/// integration tests; here, what the app does with its answer.
/// </summary>
public sealed class SqlServerStartupCheckTests
{
    private static readonly SqlServerTableName Orders = SqlServerTableName.Parse("dbo.Orders");

    [Fact]
    public async Task A_database_that_was_not_set_up_stops_the_app_naming_each_missing_table_and_the_command_that_fixes_it()
    {
        var report = new SqlServerSchemaReport("sql-rollout/rollout", Orders, ["rollout_checkpoints", "rollout_feed_failures"], true, false, true);
        var check = new SqlServerStartupCheck(_ => Task.FromResult(report), SqlServerStartupCheck.Fix("specs/orders.rollout.json"), NullLogger<SqlServerStartupCheck>.Instance);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => check.StartAsync(CancellationToken.None));

        Assert.Contains("missing table(s) dbo.rollout_checkpoints, dbo.rollout_feed_failures", error.Message, StringComparison.Ordinal);
        Assert.Contains("change tracking is off for dbo.Orders", error.Message, StringComparison.Ordinal);
        Assert.Contains("`rollout sqlserver-script specs/orders.rollout.json`", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_set_up_database_or_one_that_cannot_be_reached_lets_the_app_start()
    {
        var ready = new SqlServerSchemaReport("sql-rollout/rollout", Orders, [], true, true, true);
        var fine = new SqlServerStartupCheck(_ => Task.FromResult(ready), "fix", NullLogger<SqlServerStartupCheck>.Instance);
        var unreachable = new SqlServerStartupCheck(_ => throw new TimeoutException("Database 'rollout' is not currently available (resuming)."), "fix", NullLogger<SqlServerStartupCheck>.Instance);

        await fine.StartAsync(CancellationToken.None);
        await unreachable.StartAsync(CancellationToken.None);
    }
}
