using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rollout.Core.Gate;
using Rollout.Core.Spec;
using Rollout.Orchestration;
using Rollout.Orchestration.Hosting;
using Rollout.Storage.Sqlite;
using Spectre.Console;

namespace Rollout.Cli.Bench;

/// <summary>Settings of <c>rollout bench rollback</c>.</summary>
internal sealed record RollbackBenchOptions(int Trials, TimeSpan Interval, int RequestsPerSecond, string Folder);

/// <summary>One measured rollback.</summary>
/// <param name="Trial">Trial number.</param>
/// <param name="FaultOffset">How long after the phase started the fault began.</param>
/// <param name="DetectionToRollback">From the first failing request recorded to exposure 0 in the store.</param>
/// <param name="Reason">The rollback reason recorded.</param>
internal sealed record RollbackTrial(int Trial, TimeSpan FaultOffset, TimeSpan DetectionToRollback, string Reason);

/// <summary>
/// Detection-to-rollback time on the embedded default: a real rollout (Durable Task SDK worker, in-memory
/// backend; SQLite stores and telemetry) bakes its canary phase under synthetic traffic recorded in the
/// telemetry table; at a varying moment the new path starts failing half its requests. The time measured runs
/// from the first failing request recorded to the moment the stored exposure is 0 (what the gate reads).
/// </summary>
internal static class RollbackBench
{
    public static async Task<IReadOnlyList<RollbackTrial>> RunAsync(RollbackBenchOptions options, Action<string> log, CancellationToken cancellationToken)
    {
        var spec = RolloutSpecLoader.Load(DualWriteBench.SpecJson).Spec! with
        {
            Phases = [new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT1H" }],
            Budgets = new BudgetsSpec
            {
                EvaluateEvery = "PT" + options.Interval.TotalSeconds.ToString(CultureInfo.InvariantCulture) + "S",
                MinSamples = 500,
                MaxErrorRateIncrease = 0.005,
            },
        };
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddRolloutSqlite(spec, o => o.DataDirectory = options.Folder);
        builder.Services.AddRolloutOrchestration();
        using var host = builder.Build();
        var rollout = host.Services.GetRequiredService<EmbeddedRollout>();
        await SourceSeeder.CreateTableAsync(rollout, cancellationToken);
        await rollout.InitializeAsync(cancellationToken);
        await host.StartAsync(cancellationToken);
        var control = host.Services.GetRequiredService<RolloutControl>();
        var trials = new List<RollbackTrial>();
        try
        {
            for (var trial = 1; trial <= options.Trials; trial++)
            {
                // Faults start at different points of the evaluation cycle: 1.0, 1.3, 1.6… intervals into the phase.
                var offset = options.Interval * (1 + (0.3 * (trial - 1) % 1));
                trials.Add(await RunTrialAsync(trial, offset, spec, rollout, control, options, cancellationToken));
                log(string.Create(CultureInfo.InvariantCulture, $"trial {trial}: fault {offset.TotalSeconds:0.0} s into the phase, rolled back {trials[^1].DetectionToRollback.TotalMilliseconds:0} ms later"));
            }
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
            await rollout.DisposeAsync();
        }

        return trials;
    }

    private static async Task<RollbackTrial> RunTrialAsync(int trial, TimeSpan faultOffset, RolloutSpec spec, EmbeddedRollout rollout, RolloutControl control, RollbackBenchOptions options, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var errorRate = 0.0;
        long firstFailureTicks = 0;
        var traffic = Task.Run(async () =>
        {
            long n = 0;
            var perTick = Math.Max(1, options.RequestsPerSecond / 100);
            while (!stop.IsCancellationRequested)
            {
                var now = DateTimeOffset.UtcNow;
                for (var i = 0; i < perTick; i++, n++)
                {
                    var failed = (n % 100) < Volatile.Read(ref errorRate) * 100;
                    if (failed)
                    {
                        Interlocked.CompareExchange(ref firstFailureTicks, now.UtcTicks, 0);
                    }

                    rollout.Telemetry.Record(new TelemetryEvent(now, spec.Feature, "canary", 5000, "write", "legacy", "ok", 4 + (n % 7)));
                    rollout.Telemetry.Record(new TelemetryEvent(now, spec.Feature, "canary", 5000, "write", "new", failed ? "error" : "ok", 5 + (n % 7)));
                }

                await Task.Delay(10, CancellationToken.None);
            }
        }, CancellationToken.None);

        try
        {
            await control.StartAsync(RolloutInput.FromSpec(spec), cancellationToken);
            var phaseStart = await WaitAsync(async () => (await rollout.Rollouts.GetStateAsync(spec.Feature, cancellationToken)).Exposure.Buckets > 0, cancellationToken);
            await Task.Delay(faultOffset, cancellationToken);
            Volatile.Write(ref errorRate, 0.5);
            await WaitAsync(() => Task.FromResult(Interlocked.Read(ref firstFailureTicks) != 0), cancellationToken);
            var firstFailure = new DateTimeOffset(Interlocked.Read(ref firstFailureTicks), TimeSpan.Zero);
            var rolledBack = await WaitAsync(async () => (await rollout.Rollouts.GetStateAsync(spec.Feature, cancellationToken)).Exposure.Buckets == 0, cancellationToken);
            var end = await control.WaitForEndAsync(spec.Feature, cancellationToken);
            return new RollbackTrial(trial, faultOffset, rolledBack - firstFailure, (end.Result is { Reasons.Count: > 0 } r ? r.Reasons[0] : null) ?? end.Failure ?? "?");
        }
        finally
        {
            await stop.CancelAsync();
            await traffic;
        }
    }

    private static async Task<DateTimeOffset> WaitAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        var timeout = Stopwatch.StartNew();
        while (!await condition())
        {
            if (timeout.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new TimeoutException("The rollout did not react within a minute.");
            }

            await Task.Delay(5, cancellationToken);
        }

        return DateTimeOffset.UtcNow;
    }

    public static void Print(IAnsiConsole console, RollbackBenchOptions options, IReadOnlyList<RollbackTrial> trials)
    {
        var table = new Table().AddColumns("trial", "fault after phase start", "detection to rollback", "reason");
        foreach (var t in trials)
        {
            table.AddRow(
                t.Trial.ToString(CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{t.FaultOffset.TotalSeconds:0.0} s"),
                string.Create(CultureInfo.InvariantCulture, $"{t.DetectionToRollback.TotalSeconds:0.00} s"),
                Markup.Escape(t.Reason));
        }

        console.Write(table);
        var sorted = trials.Select(t => t.DetectionToRollback.TotalSeconds).Order().ToArray();
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"health interval {options.Interval.TotalSeconds:0.#} s, {options.RequestsPerSecond} requests/s per path: median {sorted[sorted.Length / 2]:0.00} s, max {sorted[^1]:0.00} s (target: under 10 s)"));
    }
}
