using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Azure.Cosmos;
using Rollout.Core.DataPath;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// The target-store contract on <see cref="CosmosTargetStore"/>, and what is particular to Cosmos: on the local
/// Cosmos-compatible server (through <see cref="CosmosQueryProxy"/>, bulk off) always, and on <c>COSMOS_ENDPOINT</c> (bulk on)
/// where it is set. Each test has a container of its own.
/// </summary>
public abstract class CosmosTargetStoreContractTests(CosmosServerFixture server) : TargetStoreContract, IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => server.DropContainersAsync();

    protected override async Task<TargetUnderTest> NewStoreAsync()
    {
        var store = await server.NewStoreAsync();
        return new TargetUnderTest(store, store, store);
    }

    protected override async Task TamperAsync(TargetUnderTest store, SourceKey key)
    {
        var container = ((CosmosTargetStore)store.Engine).Container;
        var document = await store.Target.GetAsync(key, CancellationToken.None);
        var partitionKey = new PartitionKey(document!.PartitionKey);
        using var read = await container.ReadItemStreamAsync(document.Id, partitionKey);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var item = JsonNode.Parse(read.Content)!.AsObject();
        item["note"] = "edited";
        using var body = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(item.ToJsonString()));
        using var replaced = await container.ReplaceItemStreamAsync(body, document.Id, partitionKey);
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
    }

    protected override TargetUnderTest OtherInstance(TargetUnderTest store)
    {
        var other = new CosmosTargetStore(((CosmosTargetStore)store.Engine).Container, "/customerId");
        return new TargetUnderTest(other, other, other);
    }

    [TargetFact]
    public async Task Item_carries_the_pipeline_fields_in_its_rollout_property()
    {
        var store = await server.NewStoreAsync();
        await store.ApplyAsync([Upsert(42, 7, customer: "c3")], CancellationToken.None);

        var item = await store.Container.ReadItemAsync<JsonObject>("42", new PartitionKey("c3"));
        var system = item.Resource["_rollout"]!.AsObject();

        Assert.Equal("[42]", (string?)system["key"]);
        Assert.Equal(Convert.ToHexStringLower(Key(42).Sort), (string?)system["sort"]);
        Assert.Equal(7, (long?)system["version"]);
        Assert.Equal(Doc(42, "c3", 10.5m).Hash.ToString(), (string?)system["hash"]);
        Assert.False((bool?)system["tombstone"]);
        Assert.Equal("c3", (string?)item.Resource["customerId"]);
    }

    [TargetTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_write_that_loses_a_race_reads_again_and_decides_again(bool delete)
    {
        var store = await server.NewStoreAsync();
        var rival = new CosmosTargetStore(store.Container, "/customerId");
        await store.ApplyAsync([Upsert(1, 3)], CancellationToken.None);
        var raced = 0;
        store.BeforeConditionalWrite = async _ =>
        {
            // Between this write's read and its conditional write, another instance applies a newer version.
            if (Interlocked.Increment(ref raced) == 1)
            {
                Assert.Equal(new ApplyResult(1, 0), await rival.ApplyAsync([Upsert(1, 9, total: 9m)], CancellationToken.None));
            }
        };

        var result = await store.ApplyAsync([delete ? Delete(1, 5) : Upsert(1, 5, total: 5m)], CancellationToken.None);

        Assert.Equal(new ApplyResult(0, 1), result);
        Assert.Equal(1, raced);
        var document = await store.GetAsync(Key(1), CancellationToken.None);
        Assert.Equal((9L, false), (document!.SourceVersion, document.IsTombstone));
        Assert.Equal(Doc(1, "c1", 9m).Hash, document.Hash);
    }

    [TargetFact]
    public async Task A_create_that_loses_a_race_reads_again_and_applies_when_still_newer()
    {
        var store = await server.NewStoreAsync();
        var rival = new CosmosTargetStore(store.Container, "/customerId");
        var raced = 0;
        store.BeforeConditionalWrite = async _ =>
        {
            if (Interlocked.Increment(ref raced) == 1)
            {
                await rival.ApplyAsync([Upsert(1, 2, total: 2m)], CancellationToken.None);
            }
        };

        var result = await store.ApplyAsync([Upsert(1, 4, total: 4m)], CancellationToken.None);

        Assert.Equal(new ApplyResult(1, 0), result);
        Assert.Equal(2, raced);
        Assert.Equal(4, (await store.GetAsync(Key(1), CancellationToken.None))!.SourceVersion);
    }

    [TargetFact]
    public async Task Updates_of_documents_in_place_are_decided_from_one_read_many_without_key_queries()
    {
        var store = await server.NewStoreAsync();
        await store.ApplyAsync([.. Enumerable.Range(1, 10).Select(i => Upsert(i, 1, customer: $"c{i % 3}"))], CancellationToken.None);
        Assert.Equal(10, store.KeyQueries); // new keys: nothing at their places, so each key is looked up

        var updated = await store.ApplyAsync([.. Enumerable.Range(1, 10).Select(i => Upsert(i, 2, customer: $"c{i % 3}", total: i))], CancellationToken.None);
        var replay = await store.ApplyAsync([.. Enumerable.Range(1, 10).Select(i => Upsert(i, 2, customer: $"c{i % 3}", total: i))], CancellationToken.None);

        Assert.Equal(new ApplyResult(10, 0), updated);
        Assert.Equal(new ApplyResult(0, 10), replay);
        Assert.Equal(10, store.KeyQueries);
    }

    [TargetFact]
    public async Task Read_keys_reads_the_places_it_has_seen_in_one_read_many_and_looks_up_the_other_keys_in_one_query()
    {
        var store = await server.NewStoreAsync();
        await store.ApplyAsync([.. Enumerable.Range(1, 12).Select(i => Upsert(i, i, customer: $"c{i % 4}"))], CancellationToken.None);
        SourceKey[] asked = [.. Enumerable.Range(1, 14).Select(i => Key(i))]; // 13 and 14 were never written
        var reader = new CosmosTargetStore(store.Container, "/customerId");

        var first = await reader.ReadKeysAsync(asked, CancellationToken.None);
        Assert.Equal((0, 1), (reader.ReadManyRequests, reader.KeyListQueries)); // no place known yet: one lookup for all
        var second = await reader.ReadKeysAsync(asked, CancellationToken.None);
        Assert.Equal((1, 2), (reader.ReadManyRequests, reader.KeyListQueries)); // one ReadMany over four partitions; 13 and 14 looked up again

        Assert.Equal(first, second);
        Assert.Equal(12, first.Count(e => e is not null));
        Assert.Equal(0, reader.KeyQueries);

        var ranged = new CosmosTargetStore(store.Container, "/customerId");
        await ranged.ReadRangeAsync(Key(4), Key(8), withHashes: false, CancellationToken.None);
        var third = await ranged.ReadKeysAsync([Key(6), Key(5), Key(8), Key(6)], CancellationToken.None);
        Assert.Equal((1, 0), (ranged.ReadManyRequests, ranged.KeyListQueries)); // the range read showed their places
        Assert.Equal([first[5], first[4], first[7], first[5]], third);
    }

    [TargetFact]
    public async Task Read_keys_finds_a_key_another_instance_moved_since_its_place_was_seen_by_looking_it_up()
    {
        var store = await server.NewStoreAsync();
        var rival = new CosmosTargetStore(store.Container, "/customerId");
        await store.ApplyAsync([Upsert(1, 1, customer: "a"), Upsert(2, 1, customer: "a")], CancellationToken.None);
        await store.ReadRangeAsync(null, null, withHashes: false, CancellationToken.None);

        await rival.ApplyAsync([Upsert(1, 2, customer: "b")], CancellationToken.None);
        var (readMany, queries) = (store.ReadManyRequests, store.KeyListQueries); // the writes' ReadMany counts too
        var entries = await store.ReadKeysAsync([Key(1), Key(2)], CancellationToken.None);

        Assert.Equal([2L, 1L], entries.Select(e => e!.Version));
        Assert.Equal((readMany + 1, queries + 1), (store.ReadManyRequests, store.KeyListQueries)); // key 1 was not at its old place any more
        var again = await store.ReadKeysAsync([Key(1)], CancellationToken.None);
        Assert.Equal((readMany + 2, queries + 1), (store.ReadManyRequests, store.KeyListQueries)); // and is read at its new place from then on
        Assert.Equal(entries[0], again[0]);
    }

    [TargetFact]
    public async Task Missing_item_reads_as_not_found_and_cross_partition_queries_work()
    {
        var store = await server.NewStoreAsync();
        await store.ApplyAsync([Upsert(1, 1, customer: "a"), Upsert(2, 1, customer: "b")], CancellationToken.None);

        using var missing = await store.Container.ReadItemStreamAsync("nope", new PartitionKey("a"));
        var all = await store.ReadRangeAsync(null, null, withHashes: false, CancellationToken.None);

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal([Key(1), Key(2)], all.Select(e => e.Key));
    }

    [TargetFact]
    public async Task Two_source_keys_mapping_to_one_id_and_partition_key_fail_the_write()
    {
        var store = await server.NewStoreAsync();
        await store.ApplyAsync([Upsert(1, 1)], CancellationToken.None);

        var clash = new TargetWrite(Key(2), 1, Doc(1, "c1", 10.5m));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.ApplyAsync([clash], CancellationToken.None));

        Assert.Contains("belongs to source key [1], not [2]", error.Message, StringComparison.Ordinal);
        Assert.Null(await store.GetAsync(Key(2), CancellationToken.None));
    }

    [TargetFact]
    public async Task An_older_item_left_behind_by_a_partition_key_move_is_hidden_and_removed_by_the_next_write()
    {
        var store = await server.NewStoreAsync();
        await store.ApplyAsync([Upsert(1, 1, customer: "a")], CancellationToken.None);
        // Simulate a crash between writing the moved item and deleting the old one: copy the old item back.
        var old = await store.Container.ReadItemAsync<JsonObject>("1", new PartitionKey("a"));
        await store.ApplyAsync([Upsert(1, 2, customer: "b")], CancellationToken.None);
        await store.Container.CreateItemAsync(old.Resource, new PartitionKey("a"));

        var entries = await store.ReadRangeAsync(null, null, withHashes: true, CancellationToken.None);
        Assert.Equal((Key(1), 2L), (Assert.Single(entries).Key, entries[0].Version));
        Assert.Equal(1, (await store.DigestAsync(null, null, CancellationToken.None)).Count);
        Assert.Equal("b", (await store.GetAsync(Key(1), CancellationToken.None))!.PartitionKey);

        await store.ApplyAsync([Delete(1, 3)], CancellationToken.None);

        using var leftover = await store.Container.ReadItemStreamAsync("1", new PartitionKey("a"));
        Assert.Equal(HttpStatusCode.NotFound, leftover.StatusCode);
        Assert.True((await store.GetAsync(Key(1), CancellationToken.None))!.IsTombstone);
    }

    [TargetFact]
    public async Task An_item_not_written_by_rollout_at_the_documents_place_fails_the_write()
    {
        var store = await server.NewStoreAsync();
        await store.Container.CreateItemAsync(new JsonObject { ["id"] = "5", ["customerId"] = "c1" }, new PartitionKey("c1"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.ApplyAsync([Upsert(5, 1)], CancellationToken.None));

        Assert.Contains("not written by Rollout", error.Message, StringComparison.Ordinal);
    }
}

public sealed class CosmosTargetStoreContractOnLocalServer(LocalCosmosServer server) : CosmosTargetStoreContractTests(server), IClassFixture<LocalCosmosServer>;

[RequiresEnvironment(ConfiguredCosmosEndpoint.Variable, ConfiguredCosmosEndpoint.SkipReason)]
public sealed class CosmosTargetStoreContractOnCosmosEndpoint(ConfiguredCosmosEndpoint server) : CosmosTargetStoreContractTests(server), IClassFixture<ConfiguredCosmosEndpoint>;
