using Microsoft.Data.Sqlite;
using Rollout.Core.DataPath;
using Rollout.Storage.Sqlite;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>The target-store contract on the embedded SQLite target.</summary>
public sealed class SqliteTargetStoreContractTests : TargetStoreContract, IDisposable
{
    private readonly List<SqliteTarget> _stores = [];

    protected override Task<TargetUnderTest> NewStoreAsync()
    {
        var target = SqliteTarget.Create();
        _stores.Add(target);
        return Task.FromResult(target.Store);
    }

    protected override async Task TamperAsync(TargetUnderTest store, SourceKey key)
    {
        var sqlite = (SqliteTargetStore)store.Engine;
        var folder = _stores.Single(s => s.Store == store).Folder;
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(folder, "target.db")}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE \"{sqlite.DocumentTable}\" SET json = replace(json, '\"ok\"', '\"edited\"') WHERE sort_key = @sort";
        command.Parameters.AddWithValue("@sort", key.Sort);
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    protected override TargetUnderTest OtherInstance(TargetUnderTest store)
    {
        var folder = _stores.Single(s => s.Store == store).Folder;
        var other = new SqliteTargetStore(new SqliteDatabase(Path.Combine(folder, "target.db"), durable: false), "orders", TimeProvider.System);
        return new TargetUnderTest(other, other, other);
    }

    public void Dispose()
    {
        foreach (var store in _stores)
        {
            store.Dispose();
        }
    }
}
