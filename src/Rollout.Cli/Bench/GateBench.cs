using System.Diagnostics;
using System.Globalization;
using Rollout.Core.DataPath;
using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Spec;
using Rollout.Storage.Sqlite;
using Spectre.Console;

namespace Rollout.Cli.Bench;

/// <summary>Settings of <c>rollout bench gate</c>.</summary>
internal sealed record GateBenchOptions(int Rows, TimeSpan Duration, string Folder);

/// <summary>One measured way of serving a request.</summary>
internal sealed record GateBenchResult(string Method, string Baseline, long Operations, double Seconds)
{
    public double PerSecond => Operations / Seconds;
}

/// <summary>
/// What the gate costs a request on the embedded default, measured side by side in one run: a write through the
/// gate (decision, one transaction with the exposure ledger and the subject's write version) against the same
/// update in a plain transaction, and reads through the gate in each read mode against a plain point read.
/// </summary>
internal static class GateBench
{
    public static async Task<IReadOnlyList<GateBenchResult>> RunAsync(GateBenchOptions options, Action<string> log, CancellationToken cancellationToken)
    {
        var spec = RolloutSpecLoader.Load(DualWriteBench.SpecJson).Spec!;
        var rollout = EmbeddedRollout.Open(options.Folder, spec, TimeProvider.System);
        await using (rollout)
        {
            await SourceSeeder.CreateTableAsync(rollout, cancellationToken);
            await rollout.InitializeAsync(cancellationToken);
            await SourceSeeder.SeedAsync(rollout, options.Rows, seed: 3, cancellationToken: cancellationToken);
            await rollout.Processor("bench").DrainAsync(cancellationToken);
            var keys = Enumerable.Range(1, options.Rows).Select(i => SourceKey.From([(long)i])).ToArray();
            const string update = "UPDATE \"Orders\" SET \"Status\" = @s WHERE \"OrderId\" = @k";
            var results = new List<GateBenchResult>();

            async Task<GateBenchResult> MeasureAsync(string method, string baseline, Func<long, Task> operation)
            {
                log($"measuring {method}…");
                var clock = Stopwatch.StartNew();
                long n = 0;
                while (clock.Elapsed < options.Duration)
                {
                    await operation(n++);
                }

                return new GateBenchResult(method, baseline, n, clock.Elapsed.TotalSeconds);
            }

            async Task PlainUpdateAsync(long n)
            {
                await using var connection = await rollout.SourceDatabase.OpenAsync(cancellationToken);
                await using var transaction = connection.BeginTransaction(deferred: false);
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                Bind(command, update, n, options.Rows);
                await command.ExecuteNonQueryAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }

            results.Add(await MeasureAsync("plain update (own transaction)", "-", PlainUpdateAsync));
            foreach (var (exposure, reads, label) in new[] { (0m, ReadMode.Legacy, "0 %"), (100m, ReadMode.Live, "100 %") })
            {
                await rollout.Rollouts.SetStateAsync(spec.Feature, "bench", ExposureLevel.FromPercent(exposure), reads, "bench", cancellationToken);
                using var gate = rollout.Gate(GateOptions.From(spec));
                results.Add(await MeasureAsync($"gated write at {label} exposure", "plain update (own transaction)", n => gate.WriteAsync(
                    $"subject-{n % 5000}",
                    async (unit, ct) =>
                    {
                        await using var command = (Microsoft.Data.Sqlite.SqliteCommand)unit.Connection.CreateCommand();
                        command.Transaction = (Microsoft.Data.Sqlite.SqliteTransaction)unit.Transaction;
                        Bind(command, update, n, options.Rows);
                        await command.ExecuteNonQueryAsync(ct);
                    },
                    _ => PlainUpdateAsync(n),
                    cancellationToken)));
            }

            await rollout.Processor("bench").DrainAsync(cancellationToken);
            results.Add(await MeasureAsync("plain point read", "-", async n => await rollout.Source.GetAsync(keys[n % keys.Length], cancellationToken)));
            foreach (var (exposure, reads) in new[] { (0m, ReadMode.Legacy), (0m, ReadMode.Shadow), (100m, ReadMode.Live) })
            {
                await rollout.Rollouts.SetStateAsync(spec.Feature, "bench", ExposureLevel.FromPercent(exposure), reads, "bench", cancellationToken);
                using var gate = rollout.Gate(GateOptions.From(spec));
                results.Add(await MeasureAsync($"gated read, {reads.ToString().ToLowerInvariant()} mode at {exposure:0} %", "plain point read",
                    async n => await gate.ReadAsync($"reader-{n % 5000}", keys[n % keys.Length], cancellationToken)));
            }

            return results;
        }
    }

    private static void Bind(Microsoft.Data.Sqlite.SqliteCommand command, string sql, long n, int rows)
    {
        command.CommandText = sql;
        command.Parameters.AddWithValue("@s", (n % 2 == 0) ? "PAID" : "NEW");
        command.Parameters.AddWithValue("@k", (n % rows) + 1);
    }

    public static void Print(IAnsiConsole console, GateBenchOptions options, IReadOnlyList<GateBenchResult> results)
    {
        var table = new Table().AddColumns("method", "operations/s", "vs plain");
        foreach (var r in results)
        {
            var baseline = results.FirstOrDefault(b => b.Method == r.Baseline);
            table.AddRow(
                Markup.Escape(r.Method),
                r.PerSecond.ToString("N0", CultureInfo.InvariantCulture),
                baseline is null ? "1.00x" : string.Create(CultureInfo.InvariantCulture, $"{r.PerSecond / baseline.PerSecond:0.00}x"));
        }

        console.Write(table);
        console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{options.Rows:N0} rows, {options.Duration.TotalSeconds:0} s per method, one caller at a time"));
    }
}
