using Rollout.Core.DataPath;
using Xunit.Abstractions;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// Seeded random crash tests on real SQLite files: rows that predate tracking (backfill), a concurrent
/// writer doing inserts, updates, deletes and re-inserts, and a processor and backfill that crash at random
/// points (before apply, mid-batch, after apply before the checkpoint, after the checkpoint, between backfill
/// batches) and restart as a new instance. After catch-up the target must equal the translation of the source
/// for every key, with no lost change and no resurrected delete.
/// </summary>
public sealed class CrashInjectionTests(ITestOutputHelper output)
{
    private const int Cases = 1000;

    [Fact]
    public async Task Target_converges_to_the_source_after_random_crashes_with_a_concurrent_writer()
    {
        var crashes = 0;
        var failures = new List<string>();
        for (var seed = 1; seed <= Cases; seed++)
        {
            try
            {
                crashes += await RunCaseAsync(seed);
            }
            catch (Exception ex) when (ex is Xunit.Sdk.XunitException)
            {
                failures.Add($"seed {seed}: {ex.Message}");
                if (failures.Count >= 5)
                {
                    break;
                }
            }
        }

        output.WriteLine($"{Cases} cases, {crashes} injected crashes");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(crashes > Cases, $"only {crashes} crashes were injected in {Cases} cases; the test would not exercise recovery");
    }

    private static async Task<int> RunCaseAsync(int seed)
    {
        var random = new Random(seed);
        await using var p = await Pipeline.CreateAsync(preexistingRows: random.Next(0, 25));
        var keySpace = random.Next(5, 40);
        var crashes = 0;
        var crashEvery = random.Next(2, 6);
        var step = 0;

        void MaybeCrash(FaultPoint point)
        {
            lock (random)
            {
                if (++step % crashEvery == 0 && random.Next(3) == 0)
                {
                    crashes++;
                    throw new SimulatedCrash(point);
                }
            }
        }

        using var writerDone = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var writes = new Random(seed * 7919);
            for (var i = 0; i < 60; i++)
            {
                var key = writes.Next(1, keySpace + 1);
                switch (writes.Next(4))
                {
                    case 0: await p.DeleteAsync(key); break;
                    case 1: await p.ExecuteSourceAsync("UPDATE Orders SET TotalCents = TotalCents + 1 WHERE OrderId = @id", ("@id", (long)key)); break;
                    default: await p.UpsertAsync(key, writes.Next(1, 9), writes.Next(0, 100_000), "s" + writes.Next(5)); break;
                }
            }
        });

        // The backfill and the processor run (and crash) while the writer writes.
        var instance = 0;
        var backfillDone = false;
        while (!writer.IsCompleted || !backfillDone)
        {
            var id = $"i{instance}";
            try
            {
                p.Target.BeforeWrite = i => { if (i > 0 && random.Next(20) == 0) { MaybeCrash(FaultPoint.BeforeApply); } };
                if (!backfillDone)
                {
                    await p.Backfill(MaybeCrash).RunAsync(random.Next(1, 8), null, CancellationToken.None);
                    backfillDone = true;
                }

                var batch = await p.Processor(id, batchSize: random.Next(1, 10), fault: MaybeCrash).RunOnceAsync(CancellationToken.None);
                if (batch.Read == 0)
                {
                    // Caught up with the writer: let it write rather than poll in a hot loop (as a deployed feed waits between polls).
                    await Task.Delay(1);
                }
            }
            catch (SimulatedCrash)
            {
                // The "process" died: a new instance takes over once the dead one's lease expires.
                instance++;
                p.Time.Advance(TimeSpan.FromSeconds(31));
            }
        }

        await writer;
        p.Target.BeforeWrite = null;
        // The live instance catches up (a fresh one would wait for its lease).
        var final = await p.Processor($"i{instance}", batchSize: 50).DrainAsync(CancellationToken.None);
        Assert.True(final.LeaseHeld, $"seed {seed}: the live instance lost its lease");
        await p.AssertTargetMatchesSourceAsync($"seed {seed}");
        return crashes;
    }

    private sealed class SimulatedCrash(FaultPoint point) : Exception($"simulated crash at {point}");
}
