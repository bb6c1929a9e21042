using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer.Tests;

public sealed class DeadLetterSqlTests
{
    private static readonly DeadLetter Letter = new(0, "orders-v2", SourceKey.From(["x'); DROP TABLE t;--", 777001L]), 987654321,
        [new TranslationError("total", "TotalCents", TranslationErrorKind.ConversionFailed, "not a number")], new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.Zero), 1, null);

    [Fact]
    public void Adding_updates_the_open_record_of_the_key_with_the_newest_versions_errors_or_inserts_one()
    {
        var sql = DeadLetterSql.Add(Letter, "[]").Text;

        Assert.Contains("WHERE feature COLLATE Latin1_General_100_BIN2 = @feature AND key_hash = @key_hash AND resolved_at IS NULL", sql, StringComparison.Ordinal);
        Assert.Contains("errors = CASE WHEN @version >= version THEN @errors ELSE errors END", sql, StringComparison.Ordinal);
        Assert.Contains("IF @@ROWCOUNT = 0", sql, StringComparison.Ordinal);
        Assert.Contains("WITH (UPDLOCK, HOLDLOCK)", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void A_retry_resolves_only_a_record_whose_version_it_applied()
    {
        Assert.Contains("resolved_at = CASE WHEN version <= @applied THEN @now ELSE NULL END", DeadLetterSql.RecordRetry(1, true, 5, "[]", Letter.FirstSeen).Text, StringComparison.Ordinal);
        Assert.DoesNotContain("resolved_at", DeadLetterSql.RecordRetry(1, false, 5, "[]", Letter.FirstSeen).Text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_backlog_counts_the_features_open_records_only()
    {
        var sql = DeadLetterSql.CountOpen("orders-v2").Text;

        Assert.Contains("SELECT COUNT_BIG(*) FROM [dbo].[rollout_dead_letters]", sql, StringComparison.Ordinal);
        // The predicate of the filtered index UX_rollout_dead_letters_open, and the feature compared as the other statements do.
        Assert.Contains("WHERE feature COLLATE Latin1_General_100_BIN2 = @feature AND resolved_at IS NULL", sql, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_dead_letter_statement_takes_its_values_as_parameters()
    {
        SqlAssert.Parameterised(DeadLetterSql.Add(Letter, SqlServerDeadLetterStore.Serialize(Letter.Errors)));
        SqlAssert.Parameterised(DeadLetterSql.List("orders-v2", includeResolved: false));
        SqlAssert.Parameterised(DeadLetterSql.List("orders-v2", includeResolved: true));
        SqlAssert.Parameterised(DeadLetterSql.CountOpen("orders-v2"));
        SqlAssert.Parameterised(DeadLetterSql.RecordRetry(123456789, true, 987654321, "[]", Letter.FirstSeen));
        SqlAssert.Parameterised(DeadLetterSql.RecordRetry(123456789, false, 987654321, "[{\"field\":\"zzz\"}]", Letter.FirstSeen));
    }

    [Fact]
    public void Errors_survive_the_round_trip_through_the_stored_json()
    {
        Assert.Equal(Letter.Errors, SqlServerDeadLetterStore.Deserialize(SqlServerDeadLetterStore.Serialize(Letter.Errors)));
    }

    [Fact]
    public void Keys_are_indexed_by_a_hash_of_their_canonical_text()
    {
        Assert.Equal(32, DeadLetterSql.Hash(Letter.Key).Length);
        Assert.Equal(DeadLetterSql.Hash(SourceKey.From([1L])), DeadLetterSql.Hash(new SourceKey("[1]")));
        Assert.NotEqual(DeadLetterSql.Hash(SourceKey.From([1L])), DeadLetterSql.Hash(SourceKey.From([2L])));
    }
}
