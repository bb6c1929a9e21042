using Microsoft.Data.Sqlite;

namespace Rollout.Cli.Tests;

public sealed class DataPathCommandTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "rollout-cli-tests", Guid.NewGuid().ToString("N"));
    private readonly string _spec = CliRunner.Sample("orders.rollout.json");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    [Fact]
    public async Task Init_without_a_source_table_says_how_to_create_one()
    {
        var (code, _, error) = await CliRunner.RunAsync("init", _spec, "--data", _data);

        Assert.Equal(1, code);
        Assert.Contains("'Orders' does not exist", error, StringComparison.Ordinal);
        Assert.Contains("rollout seed", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Seed_init_backfill_and_sync_bring_the_target_level_with_the_source()
    {
        Assert.Equal(0, (await CliRunner.RunAsync("seed", _spec, "--data", _data, "--rows", "2500")).ExitCode);
        var init = await CliRunner.RunAsync("init", _spec, "--data", _data);
        var initAgain = await CliRunner.RunAsync("init", _spec, "--data", _data);
        var backfill = await CliRunner.RunAsync("backfill", _spec, "--data", _data, "--batch", "1000");
        await Sql("UPDATE Orders SET Status = 'PAID' WHERE OrderId <= 10; DELETE FROM Orders WHERE OrderId = 11;");
        var sync = await CliRunner.RunAsync("sync", _spec, "--data", _data);
        var syncAgain = await CliRunner.RunAsync("sync", _spec, "--data", _data);

        Assert.Equal((0, 0, 0, 0, 0), (init.ExitCode, initAgain.ExitCode, backfill.ExitCode, sync.ExitCode, syncAgain.ExitCode));
        Assert.Contains("100.0% 2,500/2,500 rows", backfill.Output, StringComparison.Ordinal);
        Assert.Contains("2,500 rows copied", backfill.Output, StringComparison.Ordinal);
        Assert.Contains("11 changes read, 11 applied", sync.Output, StringComparison.Ordinal);
        Assert.Contains("0 changes read", syncAgain.Output, StringComparison.Ordinal);
        Assert.Equal(2499, await Scalar("target.db", "SELECT COUNT(*) FROM documents_orders WHERE deleted = 0"));
        Assert.Equal(1, await Scalar("target.db", "SELECT COUNT(*) FROM documents_orders WHERE deleted = 1"));
        Assert.Equal(10, await Scalar("target.db", "SELECT COUNT(*) FROM documents_orders WHERE json LIKE '%\"status\":\"paid\"%' AND source_key IN ('[1]','[2]','[3]','[4]','[5]','[6]','[7]','[8]','[9]','[10]')"));
    }

    [Fact]
    public async Task Dead_letters_are_listed_with_their_reason_and_retried_once_fixed()
    {
        await CliRunner.RunAsync("seed", _spec, "--data", _data, "--rows", "10");
        await CliRunner.RunAsync("init", _spec, "--data", _data);
        await Sql("UPDATE Orders SET TotalCents = 'oops' WHERE OrderId = 5");
        await CliRunner.RunAsync("sync", _spec, "--data", _data);

        var list = await CliRunner.RunAsync("dead-letters", _spec, "--data", _data);
        await Sql("UPDATE Orders SET TotalCents = 500 WHERE OrderId = 5");
        var retry = await CliRunner.RunAsync("dead-letters", _spec, "--data", _data, "--retry");

        Assert.Equal(1, list.ExitCode);
        Assert.Contains("[5]", list.Output, StringComparison.Ordinal);
        Assert.Contains("ConversionFailed", list.Output, StringComparison.Ordinal);
        Assert.Contains("'oops' is not a whole number of cents", list.Output, StringComparison.Ordinal);
        Assert.Equal(0, retry.ExitCode);
        Assert.Contains("1 resolved", retry.Output, StringComparison.Ordinal);
        Assert.Contains("no dead letters", retry.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reconcile_repairs_drift_flags_what_needs_a_person_and_audit_lists_it()
    {
        await CliRunner.RunAsync("seed", _spec, "--data", _data, "--rows", "300");
        await CliRunner.RunAsync("init", _spec, "--data", _data);
        await CliRunner.RunAsync("backfill", _spec, "--data", _data);
        await Sql("DELETE FROM documents_orders WHERE source_key = '[7]'; UPDATE documents_orders SET source_version = 9 WHERE source_key = '[9]';", "target.db");

        var first = await CliRunner.RunAsync("reconcile", _spec, "--data", _data, "--segment", "50");
        var second = await CliRunner.RunAsync("reconcile", _spec, "--data", _data, "--deep");
        var runs = await CliRunner.RunAsync("audit", _spec, "--data", _data);
        var keys = await CliRunner.RunAsync("audit", _spec, "--data", _data, "--run", "1");
        var badRange = await CliRunner.RunAsync("reconcile", _spec, "--data", _data, "--from", "7");

        Assert.Equal(1, first.ExitCode); // a key was flagged for a person
        Assert.Contains("300 keys compared", first.Output, StringComparison.Ordinal);
        Assert.Contains("missing 1", first.Output, StringComparison.Ordinal);
        Assert.Contains("target ahead 1", first.Output, StringComparison.Ordinal);
        Assert.Contains("repaired 1, flagged for a person 1", first.Output, StringComparison.Ordinal);
        Assert.Contains("missing 0", second.Output, StringComparison.Ordinal);
        Assert.Contains("Completed", runs.Output, StringComparison.Ordinal);
        Assert.Contains("[7]", keys.Output, StringComparison.Ordinal);
        Assert.Contains("TargetAhead", keys.Output, StringComparison.Ordinal);
        Assert.Equal(2, badRange.ExitCode);
        Assert.Contains("JSON array", badRange.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commands_on_an_uninitialised_folder_point_to_init()
    {
        var (code, _, error) = await CliRunner.RunAsync("sync", _spec, "--data", _data);

        Assert.Equal(1, code);
        Assert.Contains("rollout init", error, StringComparison.Ordinal);
    }

    private async Task Sql(string sql, string file = "source.db")
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_data, file)}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> Scalar(string file, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_data, file)}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
