using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// Documents from the real translator survive the trip through Cosmos DB byte for byte (after canonical re-writing), so a
/// Cosmos target reports no false tampering and the same reconciliation digests as the SQLite target.
/// </summary>
public abstract class TranslatedContentTests(CosmosServerFixture server) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => server.DropContainersAsync();

    private const string SpecJson = """
        {
          "feature": "orders-v2",
          "source": { "table": "dbo.Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": {
            "id": { "from": "OrderId", "convert": "string" },
            "customerId": { "from": "CustomerId", "convert": "string" },
            "total": { "from": "TotalCents", "convert": "centsToDecimal" },
            "status": "Status",
            "customer.name": "Name",
            "customer.vip": "Vip"
          },
          "phases": [ { "name": "full", "exposure": 100, "bake": "PT1M" } ]
        }
        """;

    [TargetFact]
    public async Task Translated_documents_read_back_untampered_with_the_digests_of_the_sqlite_target()
    {
        var spec = RolloutSpecLoader.Load(SpecJson).Spec!;
        var translator = DocumentTranslator.Compile(spec);
        (long Id, long Customer, long Cents, string? Status, string Name, bool Vip)[] rows =
        [
            (1, 7, 1234, "open", "Ada", true),
            (2, 7, 100, "closed", "Zoë \"quoted\" \\ back", false),
            (3, 8, 5, null, "日本語 ✓", true),
            (4, 9, 0, "open", "tab\tand <html> & emoji 🎉", false),
            (5, 9, -250, "refund", "Ω", false),
            (6, 10, 999_999_999_99, "big", "Max", true),
        ];
        var writes = rows.Select((r, i) =>
        {
            var row = SourceRow.From(new Dictionary<string, object?>
            {
                ["OrderId"] = r.Id, ["CustomerId"] = r.Customer, ["TotalCents"] = r.Cents, ["Status"] = r.Status, ["Name"] = r.Name, ["Vip"] = r.Vip,
            });
            var result = translator.Translate(row);
            Assert.True(result.IsSuccess, string.Join("; ", result.Errors));
            return new TargetWrite(SourceKey.From([r.Id]), 10 + i, result.Document);
        }).ToList();
        var cosmos = await server.NewStoreAsync(spec.Target.PartitionKey);
        using var sqlite = SqliteTarget.Create();

        await cosmos.ApplyAsync(writes, CancellationToken.None);
        await sqlite.Store.Target.ApplyAsync(writes, CancellationToken.None);

        var digest = await cosmos.DigestAsync(null, null, CancellationToken.None);
        Assert.Equal(0, digest.Tampered);
        Assert.Equal(await sqlite.Store.Reconcile.DigestAsync(null, null, CancellationToken.None), digest);
        Assert.Equal(await sqlite.Store.Reconcile.QuickDigestAsync(null, null, CancellationToken.None), await cosmos.QuickDigestAsync(null, null, CancellationToken.None));
        Assert.Equal(await sqlite.Store.Reconcile.ReadRangeAsync(null, null, true, CancellationToken.None), await cosmos.ReadRangeAsync(null, null, true, CancellationToken.None));
        foreach (var write in writes)
        {
            var document = await cosmos.GetAsync(write.Key, CancellationToken.None);
            Assert.Equal(write.Document!.JsonText, document!.Json);
            Assert.Equal(await sqlite.Store.Target.GetAsync(write.Key, CancellationToken.None), document);
        }

        var expected = writes.Select(w => new ExpectedDigest(w.Key.Sort, RowDigest.Of(w.SourceVersion, w.Document!.Hash))).ToList();
        var unmatched = await cosmos.ReadUnmatchedAsync(null, null, expected, CancellationToken.None);
        Assert.All(unmatched.Matched, Assert.True);
        Assert.Empty(unmatched.Entries);
    }
}

public sealed class TranslatedContentOnLocalServer(LocalCosmosServer server) : TranslatedContentTests(server), IClassFixture<LocalCosmosServer>;

[RequiresEnvironment(ConfiguredCosmosEndpoint.Variable, ConfiguredCosmosEndpoint.SkipReason)]
public sealed class TranslatedContentOnCosmosEndpoint(ConfiguredCosmosEndpoint server) : TranslatedContentTests(server), IClassFixture<ConfiguredCosmosEndpoint>;
