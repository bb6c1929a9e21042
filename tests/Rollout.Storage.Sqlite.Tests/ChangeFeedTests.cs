namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The feed through the dual-write processor to the target. What the source store's feed itself must do is in
/// <see cref="SqliteSourceStoreContractTests"/> (the contract every source store passes).
/// </summary>
public sealed class ChangeFeedTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task A_key_change_reaches_the_target_whatever_the_batch_boundaries(int batchSize)
    {
        await using var p = await Pipeline.CreateAsync();
        await p.UpsertAsync(1, 1, 100, "a");
        await p.UpsertAsync(2, 2, 200, "b");
        await p.ExecuteSourceAsync("UPDATE Orders SET OrderId = 10 WHERE OrderId = 1");

        await p.Processor(batchSize: batchSize).DrainAsync(CancellationToken.None);

        var versions = (await p.Source.ReadChangesAsync(0, 100, CancellationToken.None)).Select(c => c.Version).ToArray();
        Assert.Equal(versions.Length, versions.Distinct().Count());
        await p.AssertTargetMatchesSourceAsync($"batch {batchSize}");
    }
}
