using Microsoft.Extensions.Time.Testing;
using Rollout.Core.DataPath;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer.Tests.Integration;

[Collection(SqlServerCollection.Name)]
public sealed class SqlServerDeadLetterStoreTests(SqlServerDatabaseFixture db)
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 5, 0, 0, TimeSpan.Zero);

    private static DeadLetter Letter(string feature, long key, long version, string message) =>
        new(0, feature, SourceKey.From([key]), version, [new TranslationError("total", "TotalCents", TranslationErrorKind.ConversionFailed, message)], T0, 1, null);

    [SqlServerFact]
    public async Task One_open_record_per_key_keeps_the_newest_failure_and_a_retry_resolves_only_what_it_applied()
    {
        await new SqlServerStateStore(db.Connections, TimeProvider.System).InitializeAsync();
        var store = new SqlServerDeadLetterStore(db.Connections, new FakeTimeProvider(T0.AddHours(1)));
        var feature = "dl-" + db.NewTableName("f").ToLowerInvariant();

        await store.AddAsync([Letter(feature, 1, 5, "v5"), Letter(feature, 2, 6, "v6")], CancellationToken.None);
        await store.AddAsync([Letter(feature, 1, 5, "v5 replayed"), Letter(feature, 1, 3, "older")], CancellationToken.None);
        await store.AddAsync([Letter(feature, 1, 8, "v8")], CancellationToken.None);

        var open = await store.ListAsync(feature, includeResolved: false, CancellationToken.None);
        Assert.Equal([("[1]", 8L, "v8"), ("[2]", 6L, "v6")], open.Select(l => (l.Key.Text, l.Version, l.Errors[0].Message)));
        Assert.Equal(2, await store.CountOpenAsync(feature, CancellationToken.None));
        Assert.Equal(0, await store.CountOpenAsync(feature + "-other", CancellationToken.None));

        var first = open[0];
        await store.RecordRetryAsync(first.Id, resolved: true, appliedVersion: 5, [], CancellationToken.None);
        Assert.Null((await store.ListAsync(feature, false, CancellationToken.None)).Single(l => l.Id == first.Id).ResolvedAt);
        await store.RecordRetryAsync(first.Id, resolved: true, appliedVersion: 8, [], CancellationToken.None);
        await store.RecordRetryAsync(open[1].Id, resolved: false, appliedVersion: 0, [new TranslationError("total", null, TranslationErrorKind.ConversionFailed, "still")], CancellationToken.None);

        var all = await store.ListAsync(feature, includeResolved: true, CancellationToken.None);
        Assert.Equal(T0.AddHours(1), all.Single(l => l.Id == first.Id).ResolvedAt);
        Assert.Equal(3, all.Single(l => l.Id == first.Id).Attempts);
        Assert.Equal(("still", 2), (all.Single(l => l.Id == open[1].Id).Errors[0].Message, all.Single(l => l.Id == open[1].Id).Attempts));
        Assert.Equal(["[2]"], (await store.ListAsync(feature, false, CancellationToken.None)).Select(l => l.Key.Text));
        Assert.Equal(1, await store.CountOpenAsync(feature, CancellationToken.None));

        // A new failure of a resolved key opens a new record.
        await store.AddAsync([Letter(feature, 1, 9, "v9")], CancellationToken.None);
        Assert.Equal(["[1]", "[2]"], (await store.ListAsync(feature, false, CancellationToken.None)).Select(l => l.Key.Text).Order());
    }
}
