using System.Globalization;
using System.Text.RegularExpressions;

namespace Rollout.Storage.SqlServer.Tests;

public sealed partial class StateSqlTests
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
        AssertParameterised(StateSql.GetCheckpoint(Hostile));
        AssertParameterised(StateSql.SaveCheckpoint(Hostile, 987654321, new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.Zero)));
        AssertParameterised(StateSql.AcquireLease(Hostile, Hostile + "owner", TimeSpan.FromMilliseconds(123457)), "@now");
        AssertParameterised(StateSql.ReleaseLease(Hostile, Hostile + "owner"));
        AssertParameterised(StateSql.GetAppLock(Hostile, TimeSpan.FromMilliseconds(45679)), "@result");
        AssertParameterised(StateSql.ReleaseAppLock(Hostile));
    }

    [Fact]
    public void Empty_or_overlong_names_are_refused()
    {
        Assert.Throws<ArgumentException>(() => StateSql.GetCheckpoint(string.Empty));
        Assert.Throws<ArgumentException>(() => StateSql.AcquireLease(new string('x', 201), "a", TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentException>(() => StateSql.GetAppLock(new string('x', 256), TimeSpan.Zero));
    }

    /// <summary>Every <c>@name</c> the text uses (other than local variables and procedure argument names) is supplied, and no value's text appears.</summary>
    private static void AssertParameterised(SqlStatement statement, params string[] locals)
    {
        var referenced = ParameterRegex().Matches(statement.Text).Select(m => m.Groups[1].Value)
            .Where(n => !locals.Contains(n, StringComparer.OrdinalIgnoreCase)).ToHashSet(StringComparer.Ordinal);
        var supplied = statement.Parameters.Select(p => p.ParameterName).ToHashSet(StringComparer.Ordinal);
        Assert.True(referenced.SetEquals(supplied), $"referenced {string.Join(",", referenced)}; supplied {string.Join(",", supplied)}");
        foreach (var parameter in statement.Parameters)
        {
            var text = parameter.Value is DateTimeOffset d ? d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : Convert.ToString(parameter.Value, CultureInfo.InvariantCulture)!;
            Assert.DoesNotContain(text, statement.Text, StringComparison.Ordinal);
        }
    }

    // A parameter or variable reference: not @@ROWCOUNT, not a procedure's argument name (followed by " = ").
    [GeneratedRegex(@"(?<![@\w])((?>@[A-Za-z_]\w*))(?!\s*=\s*[@'])")]
    private static partial Regex ParameterRegex();
}
