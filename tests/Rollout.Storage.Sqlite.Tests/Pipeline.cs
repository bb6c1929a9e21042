using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>Real SQLite files in a temp folder: an Orders source table with change capture, and a target store.</summary>
internal sealed class Pipeline : IAsyncDisposable
{
    public const string SpecJson = """
        {
          "feature": "orders-v2",
          "source": { "table": "dbo.Orders", "key": ["OrderId"] },
          "target": { "container": "orders", "partitionKey": "/customerId" },
          "mapping": {
            "id": { "from": "OrderId", "convert": "string" },
            "customerId": { "from": "CustomerId", "convert": "string" },
            "total": { "from": "TotalCents", "convert": "centsToDecimal" },
            "status": "Status"
          },
          "phases": [ { "name": "full", "exposure": 100, "bake": "PT1M" } ]
        }
        """;

    private Pipeline(string folder, RolloutSpec spec, DocumentTranslator translator, SqliteDatabase sourceDb, SqliteDatabase targetDb, FakeTimeProvider time)
    {
        Folder = folder;
        Spec = spec;
        Translator = translator;
        SourceDb = sourceDb;
        TargetDb = targetDb;
        Time = time;
        Source = SqliteSourceStore.For(sourceDb, spec, translator);
        Target = new SqliteTargetStore(targetDb, spec.Target.Container, time);
    }

    public string Folder { get; }

    public RolloutSpec Spec { get; }

    public DocumentTranslator Translator { get; }

    public SqliteDatabase SourceDb { get; }

    public SqliteDatabase TargetDb { get; }

    public FakeTimeProvider Time { get; }

    public SqliteSourceStore Source { get; }

    public SqliteTargetStore Target { get; }

    public static async Task<Pipeline> CreateAsync(int preexistingRows = 0, bool initialize = true)
    {
        var folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var spec = RolloutSpecLoader.Load(SpecJson).Spec!;
        var translator = DocumentTranslator.Compile(spec);
        var pipeline = new Pipeline(folder, spec, translator, new SqliteDatabase(Path.Combine(folder, "source.db")), new SqliteDatabase(Path.Combine(folder, "target.db")),
            new FakeTimeProvider(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero)));
        await pipeline.ExecuteSourceAsync("CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT)");
        for (var i = 1; i <= preexistingRows; i++)
        {
            await pipeline.UpsertAsync(i, i % 7, i * 100, "new");
        }

        if (initialize)
        {
            await pipeline.Source.InitializeAsync();
            await pipeline.Target.InitializeAsync();
            await new SqliteAuditStore(pipeline.TargetDb).InitializeAsync();
        }

        return pipeline;
    }

    public DualWriteProcessor Processor(string instance = "a", int batchSize = 100, Action<FaultPoint>? fault = null, ITargetStore? target = null, int maxAttempts = DualWriteOptions.DefaultMaxAttempts, ILeaseStore? leases = null, Core.RolloutMetrics? metrics = null, IChangeFeed? feed = null) =>
        new(Spec.Feature, Translator, feed ?? Source, target ?? Target, Target, Target, leases ?? Target,
            new DualWriteOptions { InstanceId = instance, BatchSize = batchSize, LeaseDuration = TimeSpan.FromSeconds(30), MaxAttempts = maxAttempts }, Time, fault, metrics);

    public SqliteAuditStore Audit => new(TargetDb);

    public Reconciler Reconciler(Action<ReconcileFaultPoint>? fault = null) =>
        new(Spec.Feature, Translator, Source, Target, Target, Audit, Time, fault);

    public async Task<int> ExecuteTargetAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = await TargetDb.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>The lease row as stored: owner and expiry (Unix ms), or null.</summary>
    public async Task<(string Owner, long ExpiresAtMs)?> LeaseAsync(string name)
    {
        await using var connection = await TargetDb.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT owner, expires_at_ms FROM leases WHERE name = @name";
        command.Parameters.AddWithValue("@name", name);
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync() ? (reader.GetString(0), reader.GetInt64(1)) : null;
    }

    public Backfill Backfill(Action<FaultPoint>? fault = null) =>
        new(Spec.Feature, Translator, Source, Source, Target, Target, Target, Time, fault);

    public Task UpsertAsync(long id, long customer, object? cents, string? status) =>
        ExecuteSourceAsync(
            "INSERT INTO Orders (OrderId, CustomerId, TotalCents, Status) VALUES (@id, @c, @t, @s) ON CONFLICT (OrderId) DO UPDATE SET CustomerId = excluded.CustomerId, TotalCents = excluded.TotalCents, Status = excluded.Status",
            ("@id", id), ("@c", customer), ("@t", cents), ("@s", status));

    public Task DeleteAsync(long id) => ExecuteSourceAsync("DELETE FROM Orders WHERE OrderId = @id", ("@id", id));

    public async Task<int> ExecuteSourceAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = await SourceDb.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>Asserts the target equals the translation of the source for every key: no lost change, no resurrected delete.</summary>
    public async Task AssertTargetMatchesSourceAsync(string context = "")
    {
        var source = new Dictionary<string, SnapshotRow>();
        SourceKey? last = null;
        while (true)
        {
            var batch = await Source.ReadBatchAsync(last, 1000, CancellationToken.None);
            if (batch.Count == 0)
            {
                break;
            }

            foreach (var row in batch)
            {
                source[row.Key.Text] = row;
            }

            last = batch[^1].Key;
        }

        var target = new Dictionary<string, TargetDocument>();
        await foreach (var doc in Target.ReadAllAsync())
        {
            target[doc.Key.Text] = doc;
        }

        foreach (var (key, row) in source)
        {
            Assert.True(target.TryGetValue(key, out var doc), $"{context}: source key {key} is missing in the target");
            Assert.False(doc!.IsTombstone, $"{context}: source key {key} exists but the target holds a tombstone (v{doc.SourceVersion}, source v{row.Version})");
            var expected = Translator.Translate(row.Row).Document!;
            Assert.True(expected.Hash == doc.Hash, $"{context}: key {key} differs: source v{row.Version} {expected.JsonText}, target v{doc.SourceVersion} {doc.Json}");
            Assert.True(row.Version == doc.SourceVersion, $"{context}: key {key} source v{row.Version} but target v{doc.SourceVersion}");
        }

        foreach (var (key, doc) in target.Where(t => !source.ContainsKey(t.Key)))
        {
            Assert.True(doc.IsTombstone, $"{context}: key {key} was deleted in the source but is live in the target (resurrected): {doc.Json}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        await Task.Yield();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still open on another thread; the temp folder is cleaned by the OS.
        }
    }
}
