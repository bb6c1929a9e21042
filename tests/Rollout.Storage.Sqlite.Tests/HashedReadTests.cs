using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// Deep reconciliation's source read on the embedded store (<see cref="SqliteSourceStore.ReadHashesAsync"/>): rows hashed
/// where the engine's statement holds them, a large batch in two halves at once. It must give what reading the rows as
/// objects and hashing them gives, for every value SQLite's dynamic typing lets a column hold.
/// </summary>
public sealed class HashedReadTests
{
    [Fact]
    public async Task Rows_hashed_in_place_equal_rows_read_and_hashed_as_objects()
    {
        await using var p = await Pipeline.CreateAsync();
        // 3,000 rows, so that a batch of 5,000 is split; every tenth row holds a value of another kind than its column's.
        await p.ExecuteSourceAsync("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
            INSERT INTO Orders (OrderId, CustomerId, TotalCents, Status)
            SELECT i,
              CASE i % 10 WHEN 3 THEN '007' WHEN 4 THEN 1.5 WHEN 5 THEN NULL WHEN 6 THEN x'0102' ELSE i % 97 END,
              CASE i % 10 WHEN 1 THEN NULL WHEN 2 THEN ' 42 ' WHEN 7 THEN 12.5 ELSE i * 7 END,
              CASE i % 10 WHEN 0 THEN 'Besançon 😀' WHEN 1 THEN CAST(x'FF41' AS TEXT) WHEN 2 THEN CAST(x'610062' AS TEXT)
                WHEN 3 THEN NULL WHEN 4 THEN 'quote " and \' WHEN 5 THEN 99 ELSE 'shipped' END
            FROM n
            """);

        foreach (var (after, max) in new (long? After, int Max)[] { (null, 5000), (null, 100), (1000, 2500), (2990, 5000) })
        {
            var from = after is { } key ? SourceKey.From([key]) : null;
            var inPlace = await p.Source.ReadHashesAsync(from, max, p.Translator, CancellationToken.None);
            var asObjects = await SourceHashing.ReadAndHashAsync(p.Source, from, max, p.Translator, CancellationToken.None);

            Assert.Equal(asObjects.Count, inPlace.Count);
            Assert.Equal(Math.Min(max, 3000 - (int)(after ?? 0)), inPlace.Count);
            for (var i = 0; i < inPlace.Count; i++)
            {
                Assert.Equal(asObjects[i].Key.Sort, inPlace[i].Key.Sort);
                Assert.Equal(asObjects[i].Version, inPlace[i].Version);
                Assert.Equal(asObjects[i].Hash, inPlace[i].Hash);
                Assert.Equal(asObjects[i].Errors ?? [], inPlace[i].Errors ?? []);
                Assert.Null(inPlace[i].Row);
            }
        }

        // The mix did reach both outcomes: rows that translate and rows that do not (NULL customer, a blob as text).
        var all = await p.Source.ReadHashesAsync(null, 5000, p.Translator, CancellationToken.None);
        Assert.Contains(all, e => e.Hash is not null);
        Assert.Contains(all, e => e.Errors is { Count: > 0 });
    }

    [Theory]
    [InlineData("DELETE FROM Orders WHERE OrderId BETWEEN 100 AND 399")]
    [InlineData("DELETE FROM Orders WHERE OrderId % 3 = 0")]
    [InlineData("INSERT INTO Orders (OrderId, CustomerId, TotalCents, Status) SELECT OrderId + 1, 1, 1, 'late' FROM Orders WHERE OrderId <= 1000")]
    public async Task A_split_batch_changed_between_its_split_and_its_reads_still_holds_as_many_rows_as_asked_without_gaps(string write)
    {
        await using var p = await Pipeline.CreateAsync();
        await p.ExecuteSourceAsync("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9000)
            INSERT INTO Orders (OrderId, CustomerId, TotalCents, Status) SELECT i * 2, i % 7, i, 'new' FROM n
            """);
        // Keys are even, 2 to 18,000: the first batch of 4,000 is split at key 4,000, and each write lands in its first half
        // (the insert adds odd keys up to 1,001).
        var once = write;
        p.Source.AfterSplit = () =>
        {
            if (once is not null)
            {
                p.ExecuteSourceAsync(once).GetAwaiter().GetResult();
                once = null;
            }
        };

        var read = new List<SourceEntry>();
        SourceKey? after = null;
        while (true)
        {
            var batch = await p.Source.ReadHashesAsync(after, 4000, p.Translator, CancellationToken.None);
            read.AddRange(batch);
            if (batch.Count < 4000)
            {
                break; // the end of the table, as the reconciler takes a short batch
            }

            Assert.Equal(4000, batch.Count);
            after = batch[^1].Key;
        }

        var expected = await SourceHashing.ReadAndHashAsync(p.Source, null, 100_000, p.Translator, CancellationToken.None);
        Assert.Null(once);
        Assert.Equal(expected.Select(e => Convert.ToHexString(e.Key.Sort)), read.Select(e => Convert.ToHexString(e.Key.Sort)));
    }

    [Fact]
    public async Task Text_of_a_UTF16_database_hashes_in_place_as_it_does_as_objects()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "source.db");
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            // Stored as UTF-16: "中" is the bytes 2D 4E, which are also valid UTF-8 ("-N").
            command.CommandText = """
                PRAGMA encoding = 'UTF-16le';
                CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT);
                INSERT INTO Orders VALUES (1, 1, 100, '中'), (2, 2, 200, '中中'), (3, 3, 300, 'abc'), (4, 4, 400, 'Besançon 😀');
                """;
            command.ExecuteNonQuery();
        }

        var spec = RolloutSpecLoader.Load(Pipeline.SpecJson).Spec!;
        var translator = DocumentTranslator.Compile(spec);
        var source = SqliteSourceStore.For(new SqliteDatabase(path), spec, translator);
        await source.InitializeAsync();

        var inPlace = await source.ReadHashesAsync(null, 100, translator, CancellationToken.None);
        var asObjects = await SourceHashing.ReadAndHashAsync(source, null, 100, translator, CancellationToken.None);

        Assert.Equal(4, inPlace.Count);
        Assert.Equal(asObjects.Select(e => e.Hash), inPlace.Select(e => e.Hash));
        Assert.All(inPlace, e => Assert.NotNull(e.Hash));
    }

    [Fact]
    public async Task A_pooled_reader_sees_every_write_committed_before_its_next_read()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 10);
        Assert.Equal(10, await HashedCountAsync(p)); // the reader goes back to the pool warm, with no snapshot held

        await p.UpsertAsync(11, 1, 100, "new");
        await p.ExecuteSourceAsync("DELETE FROM Orders WHERE OrderId <= 3");

        Assert.Equal(8, await HashedCountAsync(p));
        p.SourceDb.CloseReaders();
        await p.UpsertAsync(12, 1, 100, "new");
        Assert.Equal(9, await HashedCountAsync(p));

        static async Task<int> HashedCountAsync(Pipeline p) => (await p.Source.ReadHashesAsync(null, 100, p.Translator, CancellationToken.None)).Count;
    }

    [Fact]
    public async Task A_reader_leased_before_CloseReaders_is_closed_when_it_comes_back()
    {
        await using var p = await Pipeline.CreateAsync(preexistingRows: 10);
        var db = p.SourceDb;
        db.CloseReaders();

        using (db.RentReader())
        {
        }

        Assert.Equal(1, db.IdleReaders); // given back warm

        var leased = db.RentReader();
        db.CloseReaders();
        leased.Dispose();

        Assert.Equal(0, db.IdleReaders);
    }

    [Fact]
    public void The_column_reads_go_straight_to_the_bundled_engine_where_SQLitePCLRaw_uses_it()
    {
        // The bundled e_sqlite3 is what the Microsoft.Data.Sqlite package brings on Linux, Windows and macOS: the direct
        // accessors must be in use there (the tests above compare what they read with SQLitePCLRaw's own reads).
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=:memory:");
        connection.Open(); // as before any statement: this sets SQLitePCLRaw's provider
        Assert.Equal("e_sqlite3", SQLitePCL.raw.GetNativeLibraryName());
        Assert.True(NativeColumns.Available);
    }

    [Fact]
    public async Task A_split_batch_of_a_composite_key_holds_each_row_once_in_key_order()
    {
        await using var p = await Pipeline.CreateAsync(initialize: false);
        await p.ExecuteSourceAsync("CREATE TABLE Lines (TenantId TEXT COLLATE NOCASE NOT NULL, Line INTEGER NOT NULL, Qty INTEGER, PRIMARY KEY (TenantId, Line))");
        // Tenants whose order differs between NOCASE and byte order ("B" < "a" < "c" in bytes), 1,500 lines each.
        await p.ExecuteSourceAsync("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
            INSERT INTO Lines SELECT t.tenant, n.i, n.i * 3 FROM n, (SELECT 'a' AS tenant UNION ALL SELECT 'B' UNION ALL SELECT 'c') t
            """);
        var spec = RolloutSpecLoader.Load("""
            {
              "feature": "lines",
              "source": { "table": "Lines", "key": ["TenantId", "Line"] },
              "target": { "container": "lines", "partitionKey": "/tenant" },
              "mapping": { "id": { "template": "{TenantId}-{Line}" }, "tenant": "TenantId", "qty": "Qty" },
              "phases": [ { "name": "all", "exposure": 100, "bake": "PT1M" } ]
            }
            """).Spec!;
        var translator = DocumentTranslator.Compile(spec);
        var source = SqliteSourceStore.For(p.SourceDb, spec, translator);
        await source.InitializeAsync();

        var read = new List<SourceEntry>();
        SourceKey? after = null;
        while (true)
        {
            var batch = await source.ReadHashesAsync(after, 2500, translator, CancellationToken.None);
            Assert.InRange(batch.Count, 0, 2500);
            read.AddRange(batch);
            if (batch.Count < 2500)
            {
                break;
            }

            after = batch[^1].Key;
        }

        var expected = await SourceHashing.ReadAndHashAsync(source, null, 10_000, translator, CancellationToken.None);
        Assert.Equal(4500, read.Count);
        Assert.Equal(expected.Select(e => (Convert.ToHexString(e.Key.Sort), e.Hash)), read.Select(e => (Convert.ToHexString(e.Key.Sort), e.Hash)));
        Assert.All(read, e => Assert.NotNull(e.Hash));
    }
}
