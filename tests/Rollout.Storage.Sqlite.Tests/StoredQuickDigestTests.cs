using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The change table's stored quick digests (single integer key): kept by the triggers through inserts, updates, key
/// changes and deletes, filled in for a table made by an older build, and never trusted when stale.
/// </summary>
public sealed class StoredQuickDigestTests
{
    [Fact]
    public async Task The_triggers_keep_each_change_rows_digest_for_its_current_version()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 5);
        await p.UpsertAsync(6, 1, 600, "new");
        await p.ExecuteSourceAsync("UPDATE Orders SET Status = 'paid' WHERE OrderId = 2");
        await p.ExecuteSourceAsync("UPDATE Orders SET OrderId = 60 WHERE OrderId = 3"); // a key change: old key deleted, new created
        await p.DeleteAsync(4);

        var rows = await ChangeRowsAsync(p);

        // Rows from before set-up got a change row at version 0 (the version every reader gives them), so that the change
        // table, and with it the maintained bucket digests, covers the table.
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L, 60L], rows.Select(r => r.Key));
        Assert.Equal([0L, 0L], rows.Where(r => r.Key is 1 or 5).Select(r => r.Version));
        Assert.All(rows, r => Assert.Equal((r.Version, QuickDigest.Of(r.Key, r.Version)), (r.DigestOf!.Value, r.Digest!.Value)));
        await AssertDigestMatchesVersionsAsync(p);
    }

    [Fact]
    public async Task A_change_table_from_an_older_build_gets_the_columns_filled_at_set_up_and_is_read_correctly_before()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 20);
        await p.UpsertAsync(21, 1, 2100, "new");
        await p.ExecuteSourceAsync("UPDATE Orders SET Status = 'paid' WHERE OrderId < 10");
        foreach (var trigger in new[] { "ins", "upd", "del" })
        {
            await p.ExecuteSourceAsync($"DROP TRIGGER Orders__ct_{trigger}");
        }

        await p.ExecuteSourceAsync("ALTER TABLE Orders__ct DROP COLUMN digest");
        await p.ExecuteSourceAsync("ALTER TABLE Orders__ct DROP COLUMN digest_of");

        var old = SqliteSourceStore.For(p.Source.Database, p.Spec, p.Translator); // a process that has not set up again
        await AssertDigestMatchesVersionsAsync(p, old);
        await old.InitializeAsync();
        var rows = await ChangeRowsAsync(p);

        Assert.All(rows, r => Assert.Equal((r.Version, QuickDigest.Of(r.Key, r.Version)), (r.DigestOf!.Value, r.Digest!.Value)));
        await AssertDigestMatchesVersionsAsync(p, SqliteSourceStore.For(p.Source.Database, p.Spec, p.Translator));
    }

    [Fact]
    public async Task A_stored_digest_computed_for_another_version_is_not_trusted()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 10);
        // As the triggers of an older build would leave it: the version moved on, the stored digest did not.
        await p.ExecuteSourceAsync("UPDATE Orders__ct SET version = version + 1000 WHERE OrderId IN (3, 7)");

        await AssertDigestMatchesVersionsAsync(p);
    }

    /// <summary>The store's quick digest over the whole table equals the digest of the versions it reads row by row.</summary>
    private static async Task AssertDigestMatchesVersionsAsync(Pipeline p, SqliteSourceStore? store = null)
    {
        store ??= p.Source;
        var digest = await store.QuickDigestAsync(null, 1_000, null, CancellationToken.None);
        var entries = await store.ReadVersionsAsync(null, 1_000, CancellationToken.None);
        var expected = entries.Aggregate(0L, (sum, e) => sum + QuickDigest.Of(e.Key.TryGetSingleInteger(out var k) ? k : throw new InvalidOperationException(), e.Version));

        Assert.NotNull(digest);
        Assert.Equal((entries.Count, expected), ((int)digest.Count, digest.Sum));
    }

    private static async Task<List<(long Key, long Version, long? Digest, long? DigestOf)>> ChangeRowsAsync(Pipeline p)
    {
        await using var connection = await p.Source.Database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT OrderId, version, digest, digest_of FROM Orders__ct ORDER BY OrderId";
        var rows = new List<(long, long, long?, long?)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetInt64(3)));
        }

        return rows;
    }
}
