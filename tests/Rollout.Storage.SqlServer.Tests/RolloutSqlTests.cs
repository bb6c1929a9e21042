using Rollout.Core.Exposure;
using Rollout.Core.Plan;
using Rollout.Core.Spec;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class RolloutSqlTests
{
    private const string Hostile = "x'); DROP TABLE [dbo].[rollout_state];--";
    private static readonly DateTimeOffset Now = new(2031, 2, 3, 4, 5, 6, TimeSpan.Zero);

    [Fact]
    public void Setting_the_state_updates_only_a_different_state_and_records_history_only_for_a_change()
    {
        var sql = RolloutSql.SetState("orders-v2", "canary", new ExposureLevel(1000), ReadMode.Shadow, "phase", Now).Text;

        Assert.Contains("AND (phase COLLATE Latin1_General_100_BIN2 <> @phase OR exposure_buckets <> @exposure OR reads COLLATE Latin1_General_100_BIN2 <> @reads)", sql, StringComparison.Ordinal);
        Assert.Contains("IF @changed = 1\n  INSERT INTO [dbo].[rollout_state_history]", sql.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("WITH (UPDLOCK, HOLDLOCK)", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void A_subjects_write_is_resolved_from_the_source_tables_changes_since_the_transaction_began()
    {
        var sql = RolloutSql.ResolveLastWrite(SqlServerTableName.Parse("sales.Orders"), "orders-v2", "customer-1").Text;

        Assert.Contains("FROM CHANGETABLE(CHANGES [sales].[Orders], @after) AS c", sql, StringComparison.Ordinal);
        Assert.Contains("SET version = CASE WHEN version > @v THEN version ELSE @v END, pending_after = NULL", sql, StringComparison.Ordinal);
        Assert.Contains("AND pending_after = @after", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_rollout_statement_takes_its_values_as_parameters()
    {
        SqlAssert.Parameterised(RolloutSql.GetState(Hostile[..30]));
        SqlAssert.Parameterised(RolloutSql.SetState("orders-v2", Hostile[..30], new ExposureLevel(12345), ReadMode.Live, Hostile, Now), "@changed");
        SqlAssert.Parameterised(RolloutSql.StateHistory("orders-v2"));
        SqlAssert.Parameterised(RolloutSql.RecordExposure("orders-v2", Hostile, "canary", new ExposureLevel(12345), 987654321, Now));
        SqlAssert.Parameterised(RolloutSql.ResolveLastWrite(SqlServerTableName.Parse("Orders"), "orders-v2", Hostile), "@after", "@v");
        SqlAssert.Parameterised(RolloutSql.CountExposures("orders-v2"));
    }

    [Fact]
    public void A_journal_entry_is_appended_once_whatever_the_retries()
    {
        var entry = new RolloutJournalEntry("orders-v2", Now, "kind-zz9", "canary-qq7", 12.345m, Hostile, "host-1:4242", 987654321);
        var sql = RolloutSql.AppendJournal(entry);

        SqlAssert.Parameterised(sql);
        SqlAssert.Parameterised(RolloutSql.ReadJournal("orders-v2"));
        Assert.Contains("WHERE NOT EXISTS (SELECT 1 FROM [dbo].[rollout_journal] WITH (UPDLOCK, HOLDLOCK)", sql.Text, StringComparison.Ordinal);
        Assert.Equal(RolloutSql.EntryHash(entry), RolloutSql.EntryHash(entry with { Phase = "other", ExposurePercent = 1 }));
        Assert.NotEqual(RolloutSql.EntryHash(entry), RolloutSql.EntryHash(entry with { Sequence = 1 }));
        Assert.NotEqual(RolloutSql.EntryHash(entry), RolloutSql.EntryHash(entry with { At = Now.AddTicks(1) }));
        // Length prefixes: moving text between fields gives another entry.
        Assert.NotEqual(RolloutSql.EntryHash(entry with { Kind = "a|1:b", Detail = "c" }), RolloutSql.EntryHash(entry with { Kind = "a", Detail = "b|1:c" }));
    }

    [Fact]
    public void Values_longer_than_their_columns_are_refused_before_reaching_the_server()
    {
        Assert.Throws<ArgumentException>(() => RolloutSql.GetState(new string('f', 64)));
        Assert.Throws<ArgumentException>(() => RolloutSql.RecordExposure("f", new string('s', 201), "p", ExposureLevel.None, 0, Now));
    }
}
