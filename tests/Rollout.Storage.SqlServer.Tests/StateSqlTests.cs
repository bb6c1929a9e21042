namespace Rollout.Storage.SqlServer.Tests;

public sealed class StateSqlTests
{
    private const string Hostile = "feed'; DELETE FROM [dbo].[rollout_leases];--";

    [Fact]
    public void A_checkpoint_save_is_one_merge_under_holdlock_that_keeps_the_higher_version()
    {
        var sql = StateSql.SaveCheckpoint("orders-v2/dualwrite", 5, DateTimeOffset.UnixEpoch).Text;

        Assert.Contains("MERGE [dbo].[rollout_checkpoints] WITH (HOLDLOCK) AS t", sql, StringComparison.Ordinal);
        Assert.Contains("SET version = CASE WHEN t.version > @version THEN t.version ELSE @version END", sql, StringComparison.Ordinal);
        Assert.Contains("WHEN NOT MATCHED THEN INSERT", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void Saving_a_checkpoint_clears_the_failures_counted_at_positions_it_moved_past()
    {
        var sql = StateSql.SaveCheckpoint("orders-v2/dualwrite", 5, DateTimeOffset.UnixEpoch).Text;

        Assert.Contains("DELETE FROM [dbo].[rollout_feed_failures] WHERE name COLLATE Latin1_General_100_BIN2 = @name AND position < @version;", sql, StringComparison.Ordinal);
        Assert.True(sql.IndexOf("MERGE", StringComparison.Ordinal) < sql.IndexOf("DELETE", StringComparison.Ordinal));
    }

    [Fact]
    public void A_failure_counts_one_more_at_the_same_position_and_restarts_at_one_elsewhere_and_returns_the_count()
    {
        var statement = StateSql.RecordFailure("orders-v2/dualwrite", 42, "Conflict (409)", DateTimeOffset.UnixEpoch);

        // A stale instance's failure at an older position neither resets nor overwrites the count (no row comes back).
        Assert.Contains("WHEN MATCHED AND f.position <= @position THEN UPDATE SET", statement.Text, StringComparison.Ordinal);

        Assert.Contains("MERGE [dbo].[rollout_feed_failures] WITH (HOLDLOCK) AS f", statement.Text, StringComparison.Ordinal);
        Assert.Contains("attempts = CASE WHEN f.position = @position THEN f.attempts + 1 ELSE 1 END", statement.Text, StringComparison.Ordinal);
        Assert.Contains("VALUES (@name, @position, 1, @error, @now)", statement.Text, StringComparison.Ordinal);
        Assert.EndsWith("OUTPUT inserted.attempts;", statement.Text.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(2000, StateSql.RecordFailure("x", 1, new string('e', 5000), DateTimeOffset.UnixEpoch).Parameters.Single(p => p.ParameterName == "@error").Value!.ToString()!.Length);
    }

    [Fact]
    public void A_lease_is_taken_only_when_free_expired_or_ours_on_the_servers_clock()
    {
        var sql = StateSql.AcquireLease("feed", "a", TimeSpan.FromSeconds(30)).Text;

        Assert.Contains("MERGE [dbo].[rollout_leases] WITH (HOLDLOCK) AS l", sql, StringComparison.Ordinal);
        Assert.Contains("WHEN MATCHED AND (l.owner COLLATE Latin1_General_100_BIN2 = @owner OR l.expires_at_ms <= @now)", sql, StringComparison.Ordinal);
        Assert.Contains("DECLARE @now bigint = " + StateSql.NowMs, sql, StringComparison.Ordinal);
        Assert.Contains("SYSUTCDATETIME()", sql, StringComparison.Ordinal);
        Assert.EndsWith("SELECT @@ROWCOUNT;", sql.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(30_000L, StateSql.AcquireLease("feed", "a", TimeSpan.FromSeconds(30)).Parameters.Single(p => p.ParameterName == "@duration_ms").Value);
    }

    [Fact]
    public void The_feed_lock_is_an_exclusive_session_applock_with_a_bounded_wait()
    {
        var statement = StateSql.GetAppLock("orders-v2/dualwrite", TimeSpan.FromSeconds(2));

        Assert.Contains("EXEC @result = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = @timeout_ms;", statement.Text, StringComparison.Ordinal);
        Assert.Equal(2000, statement.Parameters.Single(p => p.ParameterName == "@timeout_ms").Value);
        Assert.Contains("sp_releaseapplock @Resource = @resource, @LockOwner = 'Session'", StateSql.ReleaseAppLock("x").Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_state_statement_takes_its_values_as_parameters()
    {
        SqlAssert.Parameterised(StateSql.GetCheckpoint(Hostile));
        SqlAssert.Parameterised(StateSql.SaveCheckpoint(Hostile, 987654321, new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.Zero)));
        SqlAssert.Parameterised(StateSql.AcquireLease(Hostile, Hostile + "owner", TimeSpan.FromMilliseconds(123457)), "@now");
        SqlAssert.Parameterised(StateSql.ReleaseLease(Hostile, Hostile + "owner"));
        SqlAssert.Parameterised(StateSql.GetAppLock(Hostile, TimeSpan.FromMilliseconds(45679)), "@result");
        SqlAssert.Parameterised(StateSql.ReleaseAppLock(Hostile));
        SqlAssert.Parameterised(StateSql.GetBackfill(Hostile));
        SqlAssert.Parameterised(StateSql.GetFailures(Hostile));
        SqlAssert.Parameterised(StateSql.RecordFailure(Hostile, 987654321, Hostile + "error", new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.Zero)));
        SqlAssert.Parameterised(StateSql.SaveBackfill(Hostile, new Rollout.Core.DataPath.BackfillProgress(987654321, Rollout.Core.DataPath.SourceKey.From(["zz-key", 777001L]), 123457, true)));
    }

    [Fact]
    public void Empty_or_overlong_names_are_refused()
    {
        Assert.Throws<ArgumentException>(() => StateSql.GetCheckpoint(string.Empty));
        Assert.Throws<ArgumentException>(() => StateSql.AcquireLease(new string('x', 201), "a", TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentException>(() => StateSql.GetAppLock(new string('x', 256), TimeSpan.Zero));
    }
}
