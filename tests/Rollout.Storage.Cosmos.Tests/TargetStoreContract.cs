using System.IO.Hashing;
using System.Text;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Translation;
using Rollout.Storage.Sqlite;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// What every target store must do, whatever the engine: version-guarded idempotent writes with versioned tombstones,
/// key-ordered range reads, and digests equal to the core's functions over what it holds (so that reconciliation
/// gives the same result on any target). Each concrete class supplies empty stores of its engine.
/// </summary>
public abstract class TargetStoreContract
{
    /// <summary>A new, empty store.</summary>
    protected abstract Task<TargetUnderTest> NewStoreAsync();

    /// <summary>Changes the content of a key's live document outside the pipeline (as a person or another app would).</summary>
    protected abstract Task TamperAsync(TargetUnderTest store, SourceKey key);

    /// <summary>Another store instance on the same data (as another process of the pipeline would hold it).</summary>
    protected abstract TargetUnderTest OtherInstance(TargetUnderTest store);

    protected static CancellationToken Ct => CancellationToken.None;

    protected static SourceKey Key(long id) => SourceKey.From([id]);

    /// <summary>A canonical translated document of an order.</summary>
    protected static TranslatedDocument Doc(long id, string customer, decimal total, string note = "ok")
    {
        var json = Encoding.UTF8.GetBytes(
            $$"""{"customerId":"{{customer}}","id":"{{id}}","note":"{{note}}","total":{{total.ToString(System.Globalization.CultureInfo.InvariantCulture)}}}""");
        return new TranslatedDocument(id.ToString(System.Globalization.CultureInfo.InvariantCulture), customer, json, new ContentHash(XxHash128.HashToUInt128(json)));
    }

    protected static TargetWrite Upsert(long id, long version, string customer = "c1", decimal total = 10.5m, string note = "ok", bool repair = false) =>
        new(Key(id), version, Doc(id, customer, total, note), repair);

    protected static TargetWrite Delete(long id, long version, bool repair = false) => new(Key(id), version, null, repair);

    [TargetFact]
    public async Task Insert_then_get_returns_the_document_with_version_and_hash()
    {
        var store = await NewStoreAsync();
        var write = Upsert(1, 5, "c7", 12.25m);

        var result = await store.Target.ApplyAsync([write], Ct);

        Assert.Equal(new ApplyResult(1, 0), result);
        var document = await store.Target.GetAsync(Key(1), Ct);
        Assert.NotNull(document);
        Assert.Equal(Key(1), document.Key);
        Assert.Equal("1", document.Id);
        Assert.Equal("c7", document.PartitionKey);
        Assert.Equal(5, document.SourceVersion);
        Assert.Equal(write.Document!.Hash, document.Hash);
        Assert.Equal(write.Document.JsonText, document.Json);
        Assert.False(document.IsTombstone);
    }

    [TargetFact]
    public async Task Get_of_a_missing_key_returns_null()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 1)], Ct);

        Assert.Null(await store.Target.GetAsync(Key(2), Ct));
    }

    [TargetFact]
    public async Task Newer_version_replaces_and_older_version_is_ignored()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 5, total: 1m)], Ct);

        var newer = await store.Target.ApplyAsync([Upsert(1, 7, total: 2m)], Ct);
        var older = await store.Target.ApplyAsync([Upsert(1, 6, total: 3m)], Ct);

        Assert.Equal(new ApplyResult(1, 0), newer);
        Assert.Equal(new ApplyResult(0, 1), older);
        var document = await store.Target.GetAsync(Key(1), Ct);
        Assert.Equal(7, document!.SourceVersion);
        Assert.Equal(Doc(1, "c1", 2m).Hash, document.Hash);
    }

    [TargetFact]
    public async Task Replaying_a_batch_changes_nothing()
    {
        var store = await NewStoreAsync();
        TargetWrite[] batch = [Upsert(1, 3), Upsert(2, 4, total: 7m), Delete(3, 5)];

        var first = await store.Target.ApplyAsync(batch, Ct);
        var before = await store.Reconcile.ReadRangeAsync(null, null, withHashes: true, Ct);
        var replay = await store.Target.ApplyAsync(batch, Ct);

        Assert.Equal(new ApplyResult(3, 0), first);
        Assert.Equal(new ApplyResult(0, 3), replay);
        Assert.Equal(before, await store.Reconcile.ReadRangeAsync(null, null, withHashes: true, Ct));
    }

    [TargetFact]
    public async Task Equal_version_is_stale_unless_it_is_a_repair()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 5, note: "drifted")], Ct);

        var plain = await store.Target.ApplyAsync([Upsert(1, 5, note: "right")], Ct);
        Assert.Equal(new ApplyResult(0, 1), plain);
        Assert.Equal(Doc(1, "c1", 10.5m, "drifted").Hash, (await store.Target.GetAsync(Key(1), Ct))!.Hash);

        var repair = await store.Target.ApplyAsync([Upsert(1, 5, note: "right", repair: true)], Ct);
        Assert.Equal(new ApplyResult(1, 0), repair);
        Assert.Equal(Doc(1, "c1", 10.5m, "right").Hash, (await store.Target.GetAsync(Key(1), Ct))!.Hash);
    }

    [TargetFact]
    public async Task Repair_never_overwrites_a_newer_version()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 9, note: "live")], Ct);

        var repair = await store.Target.ApplyAsync([Upsert(1, 8, note: "repair", repair: true)], Ct);
        var repairDelete = await store.Target.ApplyAsync([Delete(1, 8, repair: true)], Ct);

        Assert.Equal(new ApplyResult(0, 1), repair);
        Assert.Equal(new ApplyResult(0, 1), repairDelete);
        var document = await store.Target.GetAsync(Key(1), Ct);
        Assert.Equal(9, document!.SourceVersion);
        Assert.False(document.IsTombstone);
        Assert.Equal(Doc(1, "c1", 10.5m, "live").Hash, document.Hash);
    }

    [TargetFact]
    public async Task Delete_leaves_a_versioned_tombstone_that_blocks_an_older_upsert()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 2)], Ct);

        var deleted = await store.Target.ApplyAsync([Delete(1, 4)], Ct);
        var late = await store.Target.ApplyAsync([Upsert(1, 3)], Ct);

        Assert.Equal(new ApplyResult(1, 0), deleted);
        Assert.Equal(new ApplyResult(0, 1), late);
        var tombstone = await store.Target.GetAsync(Key(1), Ct);
        Assert.NotNull(tombstone);
        Assert.True(tombstone.IsTombstone);
        Assert.Equal(4, tombstone.SourceVersion);
        Assert.Null(tombstone.Json);
        Assert.Null(tombstone.Hash);

        var revived = await store.Target.ApplyAsync([Upsert(1, 5, total: 99m)], Ct);
        Assert.Equal(new ApplyResult(1, 0), revived);
        var live = await store.Target.GetAsync(Key(1), Ct);
        Assert.False(live!.IsTombstone);
        Assert.Equal(5, live.SourceVersion);
        Assert.Equal(Doc(1, "c1", 99m).Hash, live.Hash);
    }

    [TargetFact]
    public async Task Delete_of_a_key_never_written_still_blocks_its_older_insert()
    {
        var store = await NewStoreAsync();

        Assert.Equal(new ApplyResult(1, 0), await store.Target.ApplyAsync([Delete(7, 10)], Ct));
        Assert.Equal(new ApplyResult(0, 1), await store.Target.ApplyAsync([Upsert(7, 9)], Ct));

        var document = await store.Target.GetAsync(Key(7), Ct);
        Assert.True(document!.IsTombstone);
        Assert.Equal(10, document.SourceVersion);
        Assert.Equal(new ApplyResult(1, 0), await store.Target.ApplyAsync([Upsert(7, 11)], Ct));
        var entries = await store.Reconcile.ReadRangeAsync(null, null, withHashes: false, Ct);
        var entry = Assert.Single(entries);
        Assert.Equal((Key(7), 11L, false), (entry.Key, entry.Version, entry.IsTombstone));
    }

    [TargetFact]
    public async Task A_new_partition_key_moves_the_document_and_the_key_keeps_one_entry()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 1, customer: "c1")], Ct);

        await store.Target.ApplyAsync([Upsert(1, 2, customer: "c2")], Ct);
        var late = await store.Target.ApplyAsync([Upsert(1, 1, customer: "c1")], Ct);

        Assert.Equal(new ApplyResult(0, 1), late);
        var document = await store.Target.GetAsync(Key(1), Ct);
        Assert.Equal(("c2", 2L), (document!.PartitionKey, document.SourceVersion));
        var entry = Assert.Single(await store.Reconcile.ReadRangeAsync(null, null, withHashes: true, Ct));
        Assert.Equal(Doc(1, "c2", 10.5m).Hash, entry.Hash);
    }

    [TargetFact]
    public async Task Concurrent_writers_of_one_key_end_at_the_newest_version()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 1)], Ct);

        var results = await Task.WhenAll(Enumerable.Range(2, 12).Select(v => store.Target.ApplyAsync([Upsert(1, v, total: v)], Ct)));

        Assert.Equal(12, results.Sum(r => r.Applied + r.Stale));
        var document = await store.Target.GetAsync(Key(1), Ct);
        Assert.Equal(13, document!.SourceVersion);
        Assert.Equal(Doc(1, "c1", 13m).Hash, document.Hash);
    }

    [TargetFact]
    public async Task Range_reads_are_in_key_order_with_exclusive_lower_and_inclusive_upper_bounds()
    {
        var store = await NewStoreAsync();
        long[] ids = [300, -5, 7, 0, 1024, 42, 256, 1];
        await store.Target.ApplyAsync([.. ids.Select((id, i) => Upsert(id, i + 1, customer: $"c{i % 3}")), Delete(99, 50)], Ct);
        var ordered = ids.Append(99).Order().Select(Key).ToList();

        var all = await store.Reconcile.ReadRangeAsync(null, null, withHashes: false, Ct);
        Assert.Equal(ordered, all.Select(e => e.Key));
        Assert.All(all, e => Assert.Null(e.Hash));
        Assert.True(all.Single(e => e.Key == Key(99)).IsTombstone);

        var middle = await store.Reconcile.ReadRangeAsync(Key(0), Key(256), withHashes: true, Ct);
        Assert.Equal([Key(1), Key(7), Key(42), Key(99), Key(256)], middle.Select(e => e.Key));
        Assert.Equal(Doc(42, "c2", 10.5m).Hash, middle.Single(e => e.Key == Key(42)).Hash);

        var head = await store.Reconcile.ReadRangeAsync(null, Key(-5), withHashes: false, Ct);
        Assert.Equal([Key(-5)], head.Select(e => e.Key));
        var tail = await store.Reconcile.ReadRangeAsync(Key(300), null, withHashes: false, Ct);
        Assert.Equal([Key(1024)], tail.Select(e => e.Key));
        Assert.Empty(await store.Reconcile.ReadRangeAsync(Key(1024), null, withHashes: false, Ct));
        Assert.Empty(await store.Reconcile.ReadRangeAsync(Key(2), Key(6), withHashes: false, Ct));
    }

    [TargetFact]
    public async Task Text_and_composite_keys_read_back_in_sort_key_order()
    {
        var store = await NewStoreAsync();
        SourceKey[] keys = [SourceKey.From(["b", 2L]), SourceKey.From(["a", 10L]), SourceKey.From(["a", 9L]), SourceKey.From(["ab", 1L]), SourceKey.From(["é", 1L])];
        await store.Target.ApplyAsync([.. keys.Select((k, i) => new TargetWrite(k, 1, Doc(i, "c1", i)))], Ct);

        var all = await store.Reconcile.ReadRangeAsync(null, null, withHashes: false, Ct);

        Assert.Equal(keys.OrderBy(k => k.Sort, Comparer<byte[]>.Create((a, b) => SortKey.Compare(a, b))), all.Select(e => e.Key));
        Assert.Equal(keys[1], (await store.Target.GetAsync(SourceKey.From(["a", 10L]), Ct))!.Key);
    }

    [TargetFact]
    public async Task Digests_are_the_core_functions_over_the_live_documents()
    {
        var store = await NewStoreAsync();
        TargetWrite[] writes = [Upsert(1, 11), Upsert(2, 12, total: 3m), Upsert(3, 13), Delete(4, 14), Upsert(5, 15, customer: "c9")];
        await store.Target.ApplyAsync(writes, Ct);
        var live = writes.Where(w => w.Document is not null).ToList();

        var digest = await store.Reconcile.DigestAsync(null, null, Ct);
        var quick = await store.Reconcile.QuickDigestAsync(null, null, Ct);

        Assert.Equal(new RangeDigest(4, live.Sum(w => RowDigest.Of(w.SourceVersion, w.Document!.Hash)), 0), digest);
        Assert.Equal(new RangeDigest(4, live.Sum(w => QuickDigest.Of(w.Key.Values()[0] is long k ? k : -1, w.SourceVersion)), 0), quick);
        var part = await store.Reconcile.DigestAsync(Key(1), Key(3), Ct);
        Assert.Equal(new RangeDigest(2, RowDigest.Of(12, writes[1].Document!.Hash) + RowDigest.Of(13, writes[2].Document!.Hash), 0), part);
    }

    [TargetFact]
    public async Task Two_stores_with_the_same_content_have_equal_digests_and_one_different_document_changes_them()
    {
        var a = await NewStoreAsync();
        var b = await NewStoreAsync();
        // The SQLite store is the reference every target must agree with.
        using var reference = SqliteTarget.Create();
        TargetWrite[] writes = [.. Enumerable.Range(1, 20).Select(i => Upsert(i, 100 + i, customer: $"c{i % 4}", total: i)), Delete(21, 200)];
        // Different batch splits and orders must not matter.
        await a.Target.ApplyAsync(writes, Ct);
        await b.Target.ApplyAsync([.. writes.Reverse().Take(10)], Ct);
        await b.Target.ApplyAsync([.. writes.Reverse().Skip(10)], Ct);
        await reference.Store.Target.ApplyAsync(writes, Ct);

        foreach (var (after, upTo) in new (SourceKey?, SourceKey?)[] { (null, null), (Key(3), Key(17)), (null, Key(1)), (Key(20), null) })
        {
            var expected = await reference.Store.Reconcile.DigestAsync(after, upTo, Ct);
            Assert.Equal(expected, await a.Reconcile.DigestAsync(after, upTo, Ct));
            Assert.Equal(expected, await b.Reconcile.DigestAsync(after, upTo, Ct));
            Assert.Equal(await reference.Store.Reconcile.QuickDigestAsync(after, upTo, Ct), await a.Reconcile.QuickDigestAsync(after, upTo, Ct));
            Assert.Equal(await reference.Store.Reconcile.ReadRangeAsync(after, upTo, true, Ct), await a.Reconcile.ReadRangeAsync(after, upTo, true, Ct));
        }

        // One document with other content at the same version (a repair writes it).
        await b.Target.ApplyAsync([Upsert(9, 109, customer: "c1", total: 9.01m, repair: true)], Ct);
        Assert.NotEqual(await a.Reconcile.DigestAsync(null, null, Ct), await b.Reconcile.DigestAsync(null, null, Ct));
        Assert.Equal(await a.Reconcile.DigestAsync(Key(9), null, Ct), await b.Reconcile.DigestAsync(Key(9), null, Ct));
        Assert.NotEqual(await a.Reconcile.DigestAsync(Key(8), Key(9), Ct), await b.Reconcile.DigestAsync(Key(8), Key(9), Ct));
        // Same content, another version: the quick digest sees it too.
        await b.Target.ApplyAsync([Upsert(10, 111, customer: "c2", total: 10m)], Ct);
        Assert.NotEqual(await a.Reconcile.QuickDigestAsync(null, null, Ct), await b.Reconcile.QuickDigestAsync(null, null, Ct));
    }

    [TargetFact]
    public async Task Read_unmatched_returns_only_what_differs_from_the_expected_digests()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 1), Upsert(2, 2, note: "drifted"), Delete(3, 3), Upsert(5, 5), Upsert(6, 6), Upsert(8, 8)], Ct);
        ExpectedDigest Expect(long id, long version, string note = "ok") => new(Key(id).Sort, RowDigest.Of(version, Doc(id, "c1", 10.5m, note).Hash));
        // Source: 1 equal, 2 with other content, 3 alive again, 4 missing in the target, 5 equal, 6 newer; 8 is extra in the target.
        ExpectedDigest[] expected = [Expect(1, 1), Expect(2, 2), Expect(3, 9), Expect(4, 4), Expect(5, 5), Expect(6, 7)];

        var result = await store.Reconcile.ReadUnmatchedAsync(Key(0), Key(8), expected, Ct);

        Assert.Equal([true, false, false, false, true, false], result.Matched);
        Assert.Equal([Key(2), Key(3), Key(6), Key(8)], result.Entries.Select(e => e.Key));
        Assert.Equal(Doc(2, "c1", 10.5m, "drifted").Hash, result.Entries[0].Hash);
        Assert.True(result.Entries[1].IsTombstone);
        Assert.Equal(6, result.Entries[2].Version);
        Assert.Equal(6, result.Read);

        var bounded = await store.Reconcile.ReadUnmatchedAsync(Key(1), Key(5), [Expect(2, 2, "drifted"), Expect(4, 4), Expect(5, 5)], Ct);
        Assert.Equal([true, false, true], bounded.Matched);
        Assert.Equal([Key(3)], bounded.Entries.Select(e => e.Key));
    }

    [TargetFact]
    public async Task A_document_changed_outside_the_pipeline_is_reported_tampered_until_a_write_replaces_it()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 1), Upsert(2, 2)], Ct);

        await TamperAsync(store, Key(2));

        Assert.Equal(1, (await store.Reconcile.DigestAsync(null, null, Ct)).Tampered);
        Assert.Equal(1, (await store.Reconcile.QuickDigestAsync(null, null, Ct)).Tampered);
        Assert.Equal([false, true], (await store.Reconcile.ReadRangeAsync(null, null, false, Ct)).Select(e => e.Tampered));
        var unmatched = await store.Reconcile.ReadUnmatchedAsync(null, null, [new(Key(1).Sort, RowDigest.Of(1, Doc(1, "c1", 10.5m).Hash)), new(Key(2).Sort, RowDigest.Of(2, Doc(2, "c1", 10.5m).Hash))], Ct);
        Assert.Equal([true, false], unmatched.Matched);

        await store.Target.ApplyAsync([Upsert(2, 2, repair: true)], Ct);
        Assert.Equal(0, (await store.Reconcile.DigestAsync(null, null, Ct)).Tampered);
    }

    [TargetFact]
    public async Task Read_keys_gives_one_entry_per_key_in_the_order_asked_with_duplicates_and_null_for_keys_never_written()
    {
        var store = await NewStoreAsync();
        // Live documents in three partitions, a tombstone in place of a document, and the tombstone of a key never written.
        await store.Target.ApplyAsync([Upsert(1, 11, customer: "c1"), Upsert(2, 12, customer: "c2", total: 2m), Upsert(3, 13, customer: "c3"), Upsert(4, 14), Upsert(5, 15, customer: "c2")], Ct);
        await store.Target.ApplyAsync([Delete(4, 24), Delete(7, 27)], Ct);
        var range = (await store.Reconcile.ReadRangeAsync(null, null, withHashes: true, Ct)).ToDictionary(e => e.Key);
        SourceKey[] asked = [Key(5), Key(9), Key(1), Key(4), Key(5), Key(7), Key(3), Key(2)];

        var entries = await store.Reconcile.ReadKeysAsync(asked, Ct);
        // Read again by an instance that has read nothing before (a Cosmos store then knows no item's place).
        var fresh = await OtherInstance(store).Reconcile.ReadKeysAsync(asked, Ct);

        Assert.Equal<TargetEntry?>([range[Key(5)], null, range[Key(1)], range[Key(4)], range[Key(5)], range[Key(7)], range[Key(3)], range[Key(2)]], entries);
        Assert.Equal(entries, fresh);
        Assert.Equal((15L, false, Doc(5, "c2", 10.5m).Hash, false), (entries[0]!.Version, entries[0]!.IsTombstone, entries[0]!.Hash, entries[0]!.Tampered));
        Assert.Equal((12L, Doc(2, "c2", 2m).Hash), (entries[7]!.Version, entries[7]!.Hash));
        Assert.Equal((24L, true, (ContentHash?)null), (entries[3]!.Version, entries[3]!.IsTombstone, entries[3]!.Hash));
        Assert.Equal((27L, true), (entries[5]!.Version, entries[5]!.IsTombstone));
        Assert.Empty(await store.Reconcile.ReadKeysAsync([], Ct));
        Assert.Equal<TargetEntry?>([null, null], await store.Reconcile.ReadKeysAsync([Key(8), Key(8)], Ct));
    }

    [TargetFact]
    public async Task Read_keys_sees_what_any_instance_wrote_since_the_keys_were_last_read()
    {
        var store = await NewStoreAsync();
        await store.Target.ApplyAsync([Upsert(1, 1), Upsert(2, 2), Upsert(3, 3), Upsert(4, 4), Upsert(5, 5)], Ct);
        SourceKey[] asked = [Key(1), Key(2), Key(3), Key(4), Key(5)];
        await store.Reconcile.ReadKeysAsync(asked, Ct);
        await store.Reconcile.ReadRangeAsync(null, null, withHashes: false, Ct);
        var other = OtherInstance(store);

        // Another instance: a newer version in place, a move to another partition, a delete; this instance: a move; and a
        // change outside the pipeline.
        await other.Target.ApplyAsync([Upsert(1, 6, total: 6m), Upsert(2, 7, customer: "c9"), Delete(3, 8)], Ct);
        await store.Target.ApplyAsync([Upsert(4, 9, customer: "c8")], Ct);
        await TamperAsync(store, Key(5));
        var entries = await store.Reconcile.ReadKeysAsync(asked, Ct);

        Assert.Equal<TargetEntry?>([.. await store.Reconcile.ReadRangeAsync(null, null, withHashes: true, Ct)], entries);
        Assert.Equal((6L, Doc(1, "c1", 6m).Hash), (entries[0]!.Version, entries[0]!.Hash));
        Assert.Equal((7L, Doc(2, "c9", 10.5m).Hash), (entries[1]!.Version, entries[1]!.Hash));
        Assert.Equal((8L, true), (entries[2]!.Version, entries[2]!.IsTombstone));
        Assert.Equal((9L, Doc(4, "c8", 10.5m).Hash), (entries[3]!.Version, entries[3]!.Hash));
        Assert.Equal((5L, true), (entries[4]!.Version, entries[4]!.Tampered));
    }

    [TargetFact]
    public async Task Read_keys_of_more_keys_than_one_request_holds_returns_every_one_in_order()
    {
        var store = await NewStoreAsync();
        // 300 documents (even keys) over seven partitions; 600 distinct keys asked, in descending order: several requests.
        await store.Target.ApplyAsync([.. Enumerable.Range(1, 300).Select(i => Upsert(2 * i, i, customer: $"c{i % 7}"))], Ct);
        var asked = Enumerable.Range(1, 600).Select(i => Key(601 - i)).ToArray();

        var fresh = await store.Reconcile.ReadKeysAsync(asked, Ct);
        await store.Reconcile.ReadRangeAsync(null, null, withHashes: false, Ct);
        var again = await store.Reconcile.ReadKeysAsync(asked, Ct);

        Assert.Equal(600, fresh.Count);
        for (var i = 0; i < asked.Length; i++)
        {
            var id = 601L - i - 1;
            if (id % 2 == 0)
            {
                Assert.Equal((Key(id), id / 2, false), (fresh[i]!.Key, fresh[i]!.Version, fresh[i]!.IsTombstone));
            }
            else
            {
                Assert.Null(fresh[i]);
            }
        }

        Assert.Equal(fresh, again);
    }
}

/// <summary>A store under test through its two ports.</summary>
public sealed record TargetUnderTest(ITargetStore Target, IReconcileTarget Reconcile, object Engine);

/// <summary>A SQLite target store in a temporary folder.</summary>
internal sealed class SqliteTarget : IDisposable
{
    private SqliteTarget(string folder, TargetUnderTest store)
    {
        Folder = folder;
        Store = store;
    }

    public string Folder { get; }

    public TargetUnderTest Store { get; }

    public static SqliteTarget Create()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-contract-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var store = new SqliteTargetStore(new SqliteDatabase(Path.Combine(folder, "target.db"), durable: false), "orders", TimeProvider.System);
        store.InitializeAsync().GetAwaiter().GetResult();
        return new SqliteTarget(folder, new TargetUnderTest(store, store, store));
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
