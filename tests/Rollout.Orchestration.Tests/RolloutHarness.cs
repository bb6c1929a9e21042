using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rollout.Core.Gate;
using Rollout.Core.Spec;
using Rollout.Orchestration;
using Rollout.Orchestration.Hosting;
using Rollout.Storage.Sqlite;

namespace Rollout.Orchestration.Tests;

/// <summary>
/// A real rollout on the embedded default: SQLite stores in a temp folder, the Durable Task SDK worker over the
/// in-memory backend, and synthetic traffic recorded in the telemetry table that the health activity reads.
/// Spec durations are written in minutes and scaled down by <see cref="TimeScale"/>, never slept through.
/// </summary>
internal sealed class RolloutHarness : IAsyncDisposable
{
    public const double TimeScale = 60; // one spec minute is one second here

    private readonly IHost _host;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _traffic;
    private bool _keepFolder;
    private bool _disposed;

    private RolloutHarness(string folder, RolloutSpec spec, IHost host, Traffic traffic, CapturedLog log)
    {
        Folder = folder;
        Log = log;
        Spec = spec;
        _host = host;
        Traffic = traffic;
        _traffic = traffic.RunAsync(Rollout.Telemetry, spec.Feature, _stop.Token);
    }

    public string Folder { get; }

    /// <summary>What the Durable Task backend and sidecar of this host logged last.</summary>
    public CapturedLog Log { get; }

    public RolloutSpec Spec { get; }

    public Traffic Traffic { get; }

    public RolloutControl Control => _host.Services.GetRequiredService<RolloutControl>();

    public IServiceProvider Services => _host.Services;

    public Microsoft.DurableTask.Client.DurableTaskClient Client => _host.Services.GetRequiredService<Microsoft.DurableTask.Client.DurableTaskClient>();

    public EmbeddedRollout Rollout => _host.Services.GetRequiredService<EmbeddedRollout>();

    public string Feature => Spec.Feature;

    /// <summary>The orders sample with test phases and budgets: durations in spec minutes (seconds here).</summary>
    public static RolloutSpec OrdersSpec(IReadOnlyList<PhaseSpec>? phases = null, Action<BudgetsSpec>? budgets = null)
    {
        var loaded = RolloutSpecLoader.Load(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", "orders.rollout.json")));
        var spec = loaded.Spec ?? throw new InvalidOperationException(string.Join("; ", loaded.Problems));
        var b = new BudgetsSpec
        {
            MaxErrorRateIncrease = 0.05,
            MaxP95LatencyMs = 250,
            MaxDriftRate = 0.01,
            MinSamples = 20,
            EvaluateEvery = "PT12S", // 0.2 s here
            ExtendBakeBy = "PT30S",
            MaxBakeExtensions = 2,
        };
        budgets?.Invoke(b);
        return spec with
        {
            Phases = phases ??
            [
                new PhaseSpec { Name = "shadow", Exposure = 0, Reads = ReadMode.Shadow, Bake = "PT1M" },
                new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT1M" },
                new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT1M" },
            ],
            Budgets = b,
        };
    }

    /// <summary>
    /// Starts a host over a new data folder, or over <paramref name="folder"/> as left by an earlier host;
    /// <paramref name="services"/> may put its own ports (a decorated health source…) in place of the storage's.
    /// </summary>
    public static async Task<RolloutHarness> StartAsync(RolloutSpec spec, Traffic? traffic = null, int rows = 40, string? folder = null, Action<RolloutOrchestrationOptions>? orchestration = null, Action<IServiceCollection>? services = null)
    {
        var reopen = folder is not null;
        folder ??= Path.Combine(Path.GetTempPath(), "rollout-orch-" + Guid.NewGuid().ToString("N")[..12]);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var log = new CapturedLog();
        builder.Logging.AddProvider(log);
        services?.Invoke(builder.Services); // before the storage: its ports are registered only where none is
        builder.Services.AddRolloutSqlite(spec, o => o.DataDirectory = folder);
        builder.Services.AddRolloutOrchestration(orchestration);
        var host = builder.Build();
        var rollout = host.Services.GetRequiredService<EmbeddedRollout>();
        if (!reopen)
        {
            await SourceSeeder.CreateTableAsync(rollout);
            await rollout.InitializeAsync();
            await SourceSeeder.SeedAsync(rollout, rows, seed: 7);
        }

        await host.StartAsync();
        return new RolloutHarness(folder, spec, host, traffic ?? new Traffic(), log);
    }

    /// <summary>Stops the host abruptly (no grace period for anything in flight) and keeps the data folder.</summary>
    public async Task CrashAsync()
    {
        _keepFolder = true;
        await _stop.CancelAsync();
        try
        {
            await _traffic;
        }
        catch (OperationCanceledException)
        {
        }

        await _host.StopAsync(new CancellationToken(canceled: true));
        await DisposeHostAsync();
    }

    public Task<string> StartRolloutAsync() => Control.StartAsync(RolloutInput.FromSpec(Spec, TimeScale));

    public async Task<RolloutSnapshot> WaitForEndAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        return await Control.WaitForEndAsync(Feature, cts.Token);
    }

    /// <summary>Polls the status until the condition holds.</summary>
    public async Task<RolloutStatusView> WaitForStatusAsync(Func<RolloutStatusView, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        RolloutStatusView? last = null;
        while (DateTime.UtcNow < deadline)
        {
            var snapshot = await Control.GetStatusAsync(Feature);
            last = snapshot?.View ?? last;
            if (last is not null && condition(last))
            {
                return last;
            }

            if (snapshot is not null && snapshot.RuntimeStatus is not (Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Running or Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Pending))
            {
                throw new Xunit.Sdk.XunitException($"The rollout ended ({snapshot.RuntimeStatus}, {snapshot.Failure}) before: {what}. Last status: {last?.Status} in {last?.Phase}; history: {History(last)}");
            }

            await Task.Delay(25);
        }

        var journal = await Rollout.Rollouts.ReadAsync(Feature, default);
        throw new Xunit.Sdk.XunitException($"Timed out waiting for: {what}. Last status: {last?.Status} in {last?.Phase} (generation {last?.Generation}); history: {History(last)}; journal: {string.Join(" | ", journal.Take(25).Select(j => $"{j.Sequence}:{j.Kind}@{j.Phase}: {j.Detail}"))}{Environment.NewLine}Durable Task log (last lines):{Environment.NewLine}{Log.Tail()}");
    }

    public static string History(RolloutStatusView? view) =>
        view is null ? "(none)" : string.Join(" | ", view.History.Select(h => $"{h.Kind}@{h.Phase}: {h.Detail}"));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _traffic;
        }
        catch (OperationCanceledException)
        {
        }

        if (_disposed)
        {
            return;
        }

        await _host.StopAsync();
        await DisposeHostAsync();
        if (!_keepFolder)
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task DisposeHostAsync()
    {
        _disposed = true;
        if (_host is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else
        {
            _host.Dispose();
        }

        _stop.Dispose();
    }
}

/// <summary>Synthetic traffic: every tick, reads on both paths and shadow comparisons, with injectable faults.</summary>
internal sealed class Traffic
{
    /// <summary>Share of new-path requests that fail.</summary>
    public double CandidateErrorRate { get; set; }

    /// <summary>Share of shadow comparisons that mismatch.</summary>
    public double ShadowMismatchRate { get; set; }

    /// <summary>False to send no new-path traffic at all (insufficient data).</summary>
    public bool CandidateTraffic { get; set; } = true;

    /// <summary>When a fault was switched on (for detection-time measurement).</summary>
    public DateTimeOffset? FaultSince { get; private set; }

    public void InjectErrors(double rate)
    {
        FaultSince = DateTimeOffset.UtcNow;
        CandidateErrorRate = rate;
    }

    public void InjectDrift(double rate)
    {
        FaultSince = DateTimeOffset.UtcNow;
        ShadowMismatchRate = rate;
    }

    public async Task RunAsync(ITelemetrySink sink, string feature, CancellationToken cancellationToken)
    {
        long n = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = DateTimeOffset.UtcNow;
            for (var i = 0; i < 4; i++, n++)
            {
                sink.Record(new TelemetryEvent(now, feature, "test", 0, "read", "legacy", "ok", 4 + (n % 5)));
                if (CandidateTraffic)
                {
                    var failed = (n % 100) < CandidateErrorRate * 100;
                    sink.Record(new TelemetryEvent(now, feature, "test", 0, "read", "new", failed ? "error" : "ok", 5 + (n % 5)));
                }

                var mismatch = (n % 100) < ShadowMismatchRate * 100;
                sink.Record(new TelemetryEvent(now, feature, "test", 0, "shadow", "new", mismatch ? "mismatch" : "match", 1));
            }

            await Task.Delay(20, cancellationToken);
        }
    }
}
