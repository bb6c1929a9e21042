using System.Globalization;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rollout.Core.Gate;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Orchestration;
using Rollout.Orchestration.Hosting;
using Rollout.Storage.Sqlite;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Rollout.Cli.Run;

/// <summary>Exit codes of <c>rollout run</c>.</summary>
internal static class RunExitCodes
{
    public const int Completed = 0;
    public const int UsageOrInput = 1;
    public const int RolledBack = 2;
    public const int Halted = 3;
}

/// <summary>
/// <c>rollout run</c>: a whole rollout on the embedded default. Real SQLite stores, the real change feed and
/// dual-write processor, scheduled reconciliation, the durable orchestration on the Durable Task SDK worker,
/// and a synthetic workload through the gate; at the end a report.
/// </summary>
internal sealed class RunSession : IDisposable
{
    private const int FeedBatchSize = 5000;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    private readonly RunSettings _settings;
    private readonly IAnsiConsole _console;
    private readonly TextWriter _error;
    private readonly List<TimelinePoint> _timeline = [];
    private readonly SemaphoreSlim _reconcileLock = new(1, 1);
    private readonly HashSet<string> _driftInjected = [];
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _notes = new(); // added to by the background loops
    private readonly Lock _plainLock = new();
    private long _lastReconcileDrifted;
    private long _lastReconcileCompared;
    private int _reconcileRuns;
    private long _feedLag;
    private long _sourceRows;
    private volatile ReconcileProgress? _rollbackReconcile;
    private long _answeredSnapshot = -1;
    private string? _approvalHintPhase;
    private volatile string? _backgroundFailure;
    private bool _backgroundRollbackSent;

    private RunSession(RunSettings settings, IAnsiConsole console, TextWriter error)
    {
        _settings = settings;
        _console = console;
        _error = error;
    }

    private RolloutSpec Spec => _settings.Spec;

    private bool Interactive => _console.Profile.Capabilities.Interactive && _console.Profile.Capabilities.Ansi;

    public static async Task<int> RunAsync(RunSettings settings, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        using var session = new RunSession(settings, console, error);
        return await session.RunAsync(cancellationToken);
    }

    public void Dispose() => _reconcileLock.Dispose();

    /// <summary>The least samples a window needs at this speed: the spec's at speed 1, scaled down (at least 5) when time is compressed.</summary>
    public static int EffectiveMinSamples(RolloutSpec spec, double speed) =>
        speed <= 1 ? spec.Budgets.MinSamples : Math.Max(5, (int)Math.Ceiling(spec.Budgets.MinSamples / speed));

    private async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        // SQLite calls block their thread (Microsoft.Data.Sqlite's async methods run synchronously): with the
        // workload, the feed, reconciliation and telemetry all on the pool, a 2-core machine's default minimum
        // starves the orchestration's gRPC stream for seconds at a time. Start with enough threads.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        var folder = _settings.Folder;
        if (!Commands.OutputFolder.TryCreate(folder, "the data folder", "--data", _error))
        {
            return RunExitCodes.UsageOrInput;
        }

        FileStream folderLock;
        try
        {
            // One run per data folder, for the whole run (seeding and backfill included).
            folderLock = new FileStream(Path.Combine(folder, "run.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            var other = ControlFile.Find(folder).Control;
            _error.WriteLine($"error: another 'rollout run'{(other is null ? string.Empty : $" (process {other.ProcessId})")} is using {Path.GetFullPath(folder)}; wait for it to end, stop it with 'rollout rollback {Spec.Feature}', or pass another --data folder");
            return RunExitCodes.UsageOrInput;
        }

        await using var heldLock = folderLock;

        var rollout = EmbeddedRollout.Open(folder, Spec, TimeProvider.System);
        await using (rollout)
        {
            var prepared = await PrepareAsync(rollout, cancellationToken);
            if (prepared != RunExitCodes.Completed)
            {
                return prepared;
            }

            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddEnvironmentVariables();
            builder.Logging.ClearProviders();
            // Ctrl+C belongs to the run (it rolls back first), not to the host, which would stop the worker under it.
            builder.Services.AddSingleton<IHostLifetime, RunHostLifetime>();
            builder.Services.AddSingleton(rollout);
            // The rollback's reconciliation (the only one the orchestration triggers) shows its progress.
            builder.Services.AddSingleton<IReconciliationTrigger>(new LockedReconciliationTrigger(
                new EmbeddedReconciliationTrigger(rollout, ReconcileOptions(rollout, ReconcileDepth.Quick), run => _rollbackReconcile?.Report(run)),
                _reconcileLock,
                started: () => _rollbackReconcile = new ReconcileProgress("reconciliation after rollback", _sourceRows, Interactive && !_settings.Json ? null : PlainLine),
                ended: run => _rollbackReconcile?.Finish(run)));
            builder.Services.AddRolloutSqlite(Spec, o => o.DataDirectory = folder);
            builder.Services.AddRolloutOrchestration(o =>
            {
                // Rollout__Orchestration__* environment variables (the connection string stays off the command line).
                builder.Configuration.GetSection(RolloutOrchestrationOptions.Section).Bind(o);
                o.Backend = _settings.Durable ? OrchestrationBackend.AzureStorage : OrchestrationBackend.InMemory;
                o.Port = 0;
            });
            using var host = builder.Build();
            await host.StartAsync(cancellationToken);
            try
            {
                return await RunRolloutAsync(host, rollout, cancellationToken);
            }
            finally
            {
                ControlFile.Delete(folder);
                await host.StopAsync(CancellationToken.None);
            }
        }
    }

    private async Task<int> PrepareAsync(EmbeddedRollout rollout, CancellationToken cancellationToken)
    {
        if (_settings.Rows is not null && await SourceSeeder.CreateTableAsync(rollout, cancellationToken))
        {
            Say($"created source table {rollout.Source.TableName} in {rollout.SourceDatabase.Path}");
        }

        try
        {
            await rollout.InitializeAsync(cancellationToken);
        }
        catch (InvalidOperationException e)
        {
            _error.WriteLine($"error: {e.Message}");
            if (_settings.Rows is null)
            {
                _error.WriteLine("hint: pass --rows N to create and seed a realistic source table");
            }

            return RunExitCodes.UsageOrInput;
        }

        var count = await rollout.Source.CountAsync(cancellationToken);
        if (_settings.Rows is { } rows && count == 0)
        {
            await WithProgressAsync("seed", async report =>
            {
                await SourceSeeder.SeedAsync(rollout, rows, seed: 42, done => report(100.0 * done / rows, $"{done:N0}/{rows:N0} rows"), cancellationToken);
                return 0;
            });
            count = rows;
        }
        else if (_settings.Rows is not null)
        {
            Say($"the source table already holds {count:N0} rows: --rows is ignored (delete {_settings.Folder} to start over)");
        }

        if (count == 0)
        {
            _error.WriteLine($"error: the source table {rollout.Source.TableName} is empty: there is nothing to roll out. Pass --rows N to seed it.");
            return RunExitCodes.UsageOrInput;
        }

        _sourceRows = count; // the workload updates rows and adds none: the size of every reconciliation

        await WithProgressAsync("backfill", report =>
            rollout.Backfill().RunAsync(5000, r => report(r.Total == 0 ? 100 : 100.0 * r.Copied / r.Total, $"{r.Copied:N0}/{r.Total:N0} rows"), cancellationToken));
        return RunExitCodes.Completed;
    }

    private async Task<int> RunRolloutAsync(IHost host, EmbeddedRollout rollout, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var minSamples = EffectiveMinSamples(Spec, _settings.Speed);
        var runSpec = Spec with { Budgets = Spec.Budgets with { MinSamples = minSamples } };
        if (minSamples != Spec.Budgets.MinSamples)
        {
            Say($"--speed {_settings.Speed:0.##} compresses the plan's time but not its traffic: health is judged on at least {minSamples} samples per window instead of the spec's {Spec.Budgets.MinSamples} (a rehearsal at --speed 1 uses the spec's)");
        }

        var endpoint = host.Services.GetRequiredService<RolloutSidecarEndpoint>();
        // From here to the monitor loop, Ctrl+C is not observed: a start it interrupted could leave a rollout running
        // that nobody rolls back (it was an unhandled RpcException 'Cancelled'). The loop sees it first thing and rolls back.
        await new ControlFile(Environment.ProcessId, endpoint.Address, Spec.Feature, started).WriteAsync(_settings.Folder, CancellationToken.None);
        var control = host.Services.GetRequiredService<RolloutControl>();
        using var workload = new SyntheticWorkload(rollout, GateOptions.From(Spec, cacheTtl: TimeSpan.FromMilliseconds(100)), _settings.RequestsPerSecond, _settings.WriteShare);
        Say($"rollout of {Spec.Feature}: {Spec.Phases.Count} phases, speed x{_settings.Speed:0.##}, {_settings.RequestsPerSecond} requests/s, approvals {_settings.Approve.ToString().ToLowerInvariant()}" +
            (_settings.Injections.Count > 0 ? ", injecting " + string.Join(", ", _settings.Injections) : string.Empty));
        Say($"other terminals: 'rollout status {Spec.Feature}', 'rollout approve|reject|pause|resume|rollback {Spec.Feature}'");
        var existing = await control.GetStatusAsync(Spec.Feature, CancellationToken.None);
        if (_settings.Durable && existing is { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended })
        {
            // The durable backend kept the rollout of a run that stopped (or died): carry on with it, from where it is.
            Say($"resuming the rollout already in flight: {existing.View?.Status} in phase {existing.View?.Phase} (started {existing.View?.StartedAt:u})");
        }
        else
        {
            try
            {
                await control.StartAsync(RolloutInput.FromSpec(runSpec, _settings.Speed, minimumInterval: TimeSpan.FromMilliseconds(250), minimumLookback: TimeSpan.FromSeconds(2)), CancellationToken.None);
            }
            catch (RolloutAlreadyRunningException e)
            {
                _error.WriteLine($"error: {e.Message}");
                return RunExitCodes.UsageOrInput;
            }
        }

        // The data path and the traffic start with the rollout (not before: an early return must leave nothing running).
        using var stop = new CancellationTokenSource();
        var processor = rollout.Processor($"rollout-run:{Environment.ProcessId}", FeedBatchSize);
        var background = new[]
        {
            Guard("dual writes", FeedLoopAsync(rollout, processor, stop.Token)),
            Guard("reconciliation", ReconcileLoopAsync(rollout, stop.Token)),
            Guard("workload", workload.RunAsync(stop.Token)),
        };

        RolloutSnapshot end;
        try
        {
            end = await MonitorAsync(rollout, control, workload, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException or Grpc.Core.RpcException)
        {
            // The run lost its rollout (no outcome): nothing may stay exposed behind it.
            await stop.CancelAsync();
            await Task.WhenAll(background);
            await SafeRollbackAsync(rollout, $"rollout run ended without an outcome: {e.Message}");
            _error.WriteLine($"error: {e.Message}; exposure set to 0 and reads to legacy in {Path.GetFullPath(_settings.Folder)}");
            return RunExitCodes.RolledBack;
        }

        await stop.CancelAsync();
        await Task.WhenAll(background);
        if (end.Result is null)
        {
            // Failed or terminated: the orchestration did not finish its own rollback, so the run does it.
            await SafeRollbackAsync(rollout, $"the rollout orchestration ended {end.RuntimeStatus}: {end.Failure}");
        }

        Say("draining the change feed and reconciling the stores…");
        await processor.DrainAsync(CancellationToken.None);
        await processor.ReleaseLeaseAsync(CancellationToken.None);
        var (agree, check) = await FinalCheckAsync(rollout);
        var outcome = end.Result?.Outcome ?? "rolledBack";
        var reasons = end.Result?.Reasons ?? [$"the rollout orchestration ended {end.RuntimeStatus.ToString().ToLowerInvariant()}{(end.Failure is { } failure ? ": " + failure : string.Empty)}; the run set exposure 0 and reads legacy"];
        var record = new RunRecord(
            Spec.Feature,
            _settings.SpecFile.FullName,
            started,
            DateTimeOffset.UtcNow,
            outcome,
            reasons,
            _settings.Speed,
            _settings.RequestsPerSecond,
            minSamples,
            [.. _settings.Injections.Select(i => i.ToString())],
            _timeline,
            await rollout.Rollouts.ReadAsync(Spec.Feature, CancellationToken.None),
            [.. (await rollout.Audit.ListRunsAsync(Spec.Feature, 10_000, CancellationToken.None)).Select(r => new ReconcileSummary(
                r.Id, r.Started, r.Ended, r.Depth.ToString().ToLowerInvariant(), r.Mode.ToString().ToLowerInvariant(), r.Counts.Compared, r.Counts.Drifted, r.Counts.Repaired, r.Counts.Flagged, r.Status.ToString().ToLowerInvariant()))],
            workload.Counters.Reads,
            workload.Counters.Writes,
            workload.Counters.FellBack,
            workload.Counters.Tampered,
            await rollout.Source.CountAsync(CancellationToken.None),
            agree,
            check);
        await record.SaveAsync(_settings.Folder, CancellationToken.None);
        var reportPath = Path.Combine(_settings.Folder, "report.html");
        await File.WriteAllTextAsync(reportPath, ReportWriter.Html(record), CancellationToken.None);
        PrintSummary(record, reportPath);
        return outcome switch
        {
            "completed" => RunExitCodes.Completed,
            "rolledBack" => RunExitCodes.RolledBack,
            "halted" => RunExitCodes.Halted,
            _ => RunExitCodes.RolledBack,
        };
    }

    private async Task SafeRollbackAsync(EmbeddedRollout rollout, string reason)
    {
        var state = await rollout.Rollouts.GetStateAsync(Spec.Feature, CancellationToken.None);
        if (state.Exposure.Buckets > 0 || state.Reads != ReadMode.Legacy)
        {
            await rollout.Rollouts.SetStateAsync(Spec.Feature, state.Phase, Core.Exposure.ExposureLevel.None, ReadMode.Legacy, "rollback: " + reason, CancellationToken.None);
        }
    }

    private async Task<RolloutSnapshot> MonitorAsync(EmbeddedRollout rollout, RolloutControl control, SyntheticWorkload workload, CancellationToken cancellationToken)
    {
        var interrupted = false;
        var lastSample = DateTimeOffset.MinValue;
        var printed = new HashSet<string>(StringComparer.Ordinal);
        var figuresEvery = FiguresInterval(Spec, _settings.Speed);
        var lastFigures = DateTimeOffset.MinValue;
        var figuresState = string.Empty;
        RolloutSnapshot? snapshot = null;
        var deadline = DateTimeOffset.MaxValue;

        async Task<RolloutSnapshot> LoopAsync(Action<IRenderable>? update)
        {
            while (true)
            {
                if (cancellationToken.IsCancellationRequested && !interrupted)
                {
                    interrupted = true;
                    deadline = DateTimeOffset.UtcNow.AddMinutes(1);
                    Say("interrupted: rolling back before exiting (exposure 0, reads legacy)…");
                    await SendQuietlyAsync(control, RolloutEvents.Rollback, "rollout run (Ctrl+C)", "interrupted by the operator", null);
                }

                if (_backgroundFailure is { } failure && !_backgroundRollbackSent)
                {
                    _backgroundRollbackSent = true;
                    Say($"{failure}: rolling back (the run can no longer keep the stores in step)");
                    await SendQuietlyAsync(control, RolloutEvents.Rollback, "rollout run", failure, null);
                }

                snapshot = await control.GetStatusAsync(Spec.Feature, CancellationToken.None);
                var ended = snapshot is not null && snapshot.RuntimeStatus is not (OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended);

                if (DateTimeOffset.UtcNow > deadline)
                {
                    throw new TimeoutException("The rollout did not end within a minute of the interruption.");
                }

                var view = snapshot?.View;
                if (view is not null)
                {
                    await ApplyFaultsAsync(view, workload);
                    await HandleApprovalAsync(view, control);
                }

                var now = DateTimeOffset.UtcNow;
                if (now - lastSample >= Tick)
                {
                    lastSample = now;
                    await SampleAsync(rollout, view, now);
                }

                if (update is not null)
                {
                    update(Render(view, workload));
                }
                else if (view is not null)
                {
                    foreach (var h in view.History)
                    {
                        if (!printed.Add(string.Create(CultureInfo.InvariantCulture, $"{h.At:O}|{h.Kind}|{h.Detail}")))
                        {
                            continue;
                        }

                        PlainLine(string.Create(CultureInfo.InvariantCulture, $"{h.At:HH:mm:ss.f} {h.Kind,-8} {h.Phase,-10} {h.Detail}"));
                    }

                    // The figures the live display shows, as one line: every few seconds, and at once when the phase changes.
                    var state = string.Create(CultureInfo.InvariantCulture, $"{view.Phase}|{view.ExposurePercent}|{view.Reads}|{view.Status}");
                    if (_timeline.Count > 0 && !ended && (state != figuresState || now - lastFigures >= figuresEvery))
                    {
                        figuresState = state;
                        lastFigures = now;
                        PlainLine(FiguresLine(view, _timeline[^1], now));
                    }
                }

                if (ended)
                {
                    return snapshot!;
                }

                await Task.Delay(Tick, CancellationToken.None);
            }
        }

        if (Interactive && !_settings.Json)
        {
            RolloutSnapshot? result = null;
            await _console.Live(new Text("starting…")).AutoClear(false).StartAsync(async context =>
            {
                result = await LoopAsync(renderable =>
                {
                    context.UpdateTarget(renderable);
                    context.Refresh();
                });
            });
            return result!;
        }

        return await LoopAsync(null);
    }

    private async Task ApplyFaultsAsync(RolloutStatusView view, SyntheticWorkload workload)
    {
        var live = view.Status is "baking" or "awaitingApproval" or "paused";
        var here = live ? _settings.Injections.Where(i => i.Phase == view.Phase).ToArray() : [];
        workload.Faults.ErrorRate = here.Where(i => i.Kind == "error-rate").Select(i => i.Value).DefaultIfEmpty(0).Max();
        workload.Faults.AddedLatency = TimeSpan.FromMilliseconds(here.Where(i => i.Kind == "latency").Select(i => i.Value).DefaultIfEmpty(0).Max());
        foreach (var drift in here.Where(i => i.Kind == "drift"))
        {
            if (_driftInjected.Add(drift.Phase))
            {
                var changed = await workload.InjectDriftAsync(drift.Value, CancellationToken.None);
                Say(string.Create(CultureInfo.InvariantCulture, $"injected drift in phase {drift.Phase}: {changed:N0} target documents changed behind the pipeline"));
            }
        }
    }

    private async Task HandleApprovalAsync(RolloutStatusView view, RolloutControl control)
    {
        if (view.Status != "awaitingApproval" || view.Snapshot == _answeredSnapshot)
        {
            return;
        }

        if (_settings.Approve == ApproveMode.Auto)
        {
            _answeredSnapshot = view.Snapshot;
            await SendQuietlyAsync(control, RolloutEvents.Approve, "rollout run (--approve auto)", null, view.Snapshot);
            return;
        }

        if (!Interactive || Console.IsInputRedirected)
        {
            if (_approvalHintPhase != view.Phase)
            {
                Say($"phase {view.Phase} waits for approval until {view.Waiting.Until:HH:mm:ss}: run 'rollout approve {Spec.Feature}' (or reject) in another terminal");
                _approvalHintPhase = view.Phase;
            }

            return;
        }

        while (Console.KeyAvailable)
        {
            var key = char.ToLowerInvariant(Console.ReadKey(intercept: true).KeyChar);
            if (key is 'a' or 'r')
            {
                _answeredSnapshot = view.Snapshot;
                await SendQuietlyAsync(control, key == 'a' ? RolloutEvents.Approve : RolloutEvents.Reject, Environment.UserName, "from the rollout run terminal", view.Snapshot);
            }
        }
    }

    private async Task SendQuietlyAsync(RolloutControl control, string command, string by, string? comment, long? snapshot)
    {
        try
        {
            var answer = await control.SendAsync(Spec.Feature, command, by, comment, snapshot, TimeSpan.FromSeconds(20), CancellationToken.None);
            if (!answer.Accepted)
            {
                _notes.Enqueue($"{command} refused: {answer.Message}");
                _answeredSnapshot = -1;
            }
        }
        catch (TimeoutException e)
        {
            _notes.Enqueue(e.Message);
            _answeredSnapshot = -1; // try again on the next look
        }
    }

    private async Task SampleAsync(EmbeddedRollout rollout, RolloutStatusView? view, DateTimeOffset now)
    {
        const double seconds = 2;
        var window = await rollout.Telemetry.QueryWindowAsync(Spec.Feature, now.AddSeconds(-seconds), now, CancellationToken.None);
        _timeline.Add(new TimelinePoint(
            now,
            view?.Phase ?? string.Empty,
            view?.ExposurePercent ?? 0,
            view?.Reads.ToString().ToLowerInvariant() ?? "legacy",
            window.Legacy.Count / seconds,
            window.Candidate.Count / seconds,
            window.Legacy.ErrorRate,
            window.Candidate.ErrorRate,
            Finite(window.Legacy.Latency.Percentile(0.95)),
            Finite(window.Candidate.Latency.Percentile(0.95)),
            Interlocked.Read(ref _feedLag),
            window.Drift.Rate));
    }

    private static double? Finite(double? value) => value is { } v && double.IsFinite(v) ? v : null;

    private async Task FeedLoopAsync(EmbeddedRollout rollout, Core.DataPath.DualWriteProcessor processor, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Core.DataPath.BatchOutcome batch;
            try
            {
                batch = await processor.RunOnceAsync(cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // As the timer would: the batch is retried from its checkpoint (a busy target is waited for, a refused change
                // counted towards the retry limit); the run goes on and the report lists what happened.
                _notes.Enqueue($"a dual-write batch failed and was retried: {e.GetType().Name}: {e.Message}");
                await Task.Delay(200, cancellationToken);
                continue;
            }

            var current = await rollout.Source.GetCurrentVersionAsync(cancellationToken);
            Interlocked.Exchange(ref _feedLag, Math.Max(0, current - batch.Checkpoint));
            if (batch.Read < FeedBatchSize)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    /// <summary>Reconciliation settings of the run: the spec's, with the rate limit scaled by the speed like every other duration.</summary>
    private Core.Reconciliation.ReconcileOptions ReconcileOptions(EmbeddedRollout rollout, ReconcileDepth depth)
    {
        var options = rollout.ReconcileOptions(depth);
        return options with { MaxRowsPerSecond = options.MaxRowsPerSecond is > 0 and var max ? (int)Math.Min(int.MaxValue, max * _settings.Speed) : options.MaxRowsPerSecond };
    }

    private async Task ReconcileLoopAsync(EmbeddedRollout rollout, CancellationToken cancellationToken)
    {
        var every = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, (long)(IsoDuration.Parse(Spec.Reconciliation.Every).Ticks / _settings.Speed)));
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(every, cancellationToken);
            await _reconcileLock.WaitAsync(cancellationToken);
            try
            {
                // These runs feed the health gate: changes the pipeline has not applied yet are lag, not drift.
                var run = await rollout.Reconciler().RunAsync(ReconcileOptions(rollout, ReconcileDepth.Quick) with { PipelineCheckpoint = rollout.PipelineCheckpointAsync }, null, cancellationToken);
                _reconcileRuns++;
                _lastReconcileCompared = run.Counts.Compared;
                _lastReconcileDrifted = run.Counts.Drifted;
            }
            finally
            {
                _reconcileLock.Release();
            }
        }
    }

    private async Task<(bool Agree, string Check)> FinalCheckAsync(EmbeddedRollout rollout)
    {
        await _reconcileLock.WaitAsync(CancellationToken.None);
        try
        {
            var reconciler = rollout.Reconciler();
            var repair = await ReconcileWithProgressAsync("final reconciliation", reconciler, ReconcileOptions(rollout, ReconcileDepth.Quick));
            var verify = await ReconcileWithProgressAsync("deep check", reconciler, ReconcileOptions(rollout, ReconcileDepth.Deep) with { Mode = RepairMode.Report });
            var agree = verify.Counts.Drifted == 0;
            return (agree, string.Create(CultureInfo.InvariantCulture,
                $"final reconciliation run {repair.Id}: {repair.Counts.Drifted} drifted, {repair.Counts.Repaired} repaired; deep check run {verify.Id}: {verify.Counts.Compared:N0} keys compared, {verify.Counts.Drifted} differ"));
        }
        finally
        {
            _reconcileLock.Release();
        }
    }

    private Task<ReconcileRun> ReconcileWithProgressAsync(string title, Reconciler reconciler, Core.Reconciliation.ReconcileOptions options) =>
        WithProgressAsync(title, async report =>
        {
            var run = await reconciler.RunAsync(options, r => report(ReconcileProgress.Percent(r.Counts.Compared, _sourceRows), ReconcileProgress.Keys(r, _sourceRows)), CancellationToken.None);
            report(100, ReconcileProgress.Keys(run, _sourceRows));
            return run;
        });

    private async Task Guard(string what, Task task)
    {
        try
        {
            await task;
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _notes.Enqueue($"{what} stopped: {e.Message}");
            _backgroundFailure ??= $"{what} stopped ({e.GetType().Name}: {e.Message})";
        }
    }

    private IRenderable Render(RolloutStatusView? view, SyntheticWorkload workload)
    {
        if (view is null)
        {
            return new Markup("[grey]starting the rollout…[/]");
        }

        var point = _timeline.Count > 0 ? _timeline[^1] : null;
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        grid.AddRow("[bold]rollout[/]", Markup.Escape($"{view.Feature}: {view.Status}, phase {view.Phase} ({view.PhaseIndex + 1} of {view.PhaseCount}), exposure {view.ExposurePercent:0.###}%, reads {view.Reads.ToString().ToLowerInvariant()}"));
        grid.AddRow("[bold]next[/]", Markup.Escape(Next(view)));
        if (point is not null)
        {
            grid.AddRow("[bold]legacy path[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{point.LegacyRps:0} req/s, errors {point.LegacyErrorRate:P2}, p95 {Ms(point.LegacyP95Ms)}")));
            grid.AddRow("[bold]new path[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{point.NewRps:0} req/s, errors {point.NewErrorRate:P2}, p95 {Ms(point.NewP95Ms)}")));
            grid.AddRow("[bold]feed lag[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{point.FeedLag:N0} changes")));
            grid.AddRow("[bold]drift[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{point.DriftRate:P3} in the window; {_reconcileRuns} reconciliations (last: {_lastReconcileDrifted:N0} of {_lastReconcileCompared:N0} keys drifted)")));
        }

        if (_rollbackReconcile is { } reconciling)
        {
            grid.AddRow(new Markup($"[bold]{Markup.Escape(reconciling.Title)}[/]"), reconciling.Bar());
        }

        grid.AddRow("[bold]workload[/]", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{workload.Counters.Reads:N0} reads, {workload.Counters.Writes:N0} writes, {workload.Counters.FellBack:N0} new-path writes fell back")));
        if (view.LastVerdict is { } verdict)
        {
            grid.AddRow("[bold]last verdict[/]", Markup.Escape($"{verdict.Kind} ({verdict.Summary})"));
        }

        var history = new Table().Border(TableBorder.Simple).AddColumns("time", "kind", "phase", "what");
        foreach (var h in view.History.TakeLast(8))
        {
            history.AddRow(Markup.Escape(h.At.ToString("HH:mm:ss.f", CultureInfo.InvariantCulture)), Markup.Escape(h.Kind), Markup.Escape(h.Phase), Markup.Escape(h.Detail));
        }

        return new Rows(new Panel(grid).Header($"rollout run (x{_settings.Speed:0.##})"), history);
    }

    /// <summary>
    /// How often plain output prints the figures: about 20 times over the plan's bakes at this speed, at least 2 s
    /// and at most a minute apart (a one-minute demo gets a line every 2 s, a real-time rehearsal one a minute).
    /// </summary>
    internal static TimeSpan FiguresInterval(RolloutSpec spec, double speed)
    {
        var plan = TimeSpan.FromTicks((long)(spec.Phases.Sum(p => IsoDuration.Parse(p.Bake).Ticks) / speed));
        return TimeSpan.FromTicks(Math.Clamp(plan.Ticks / 20, TimeSpan.FromSeconds(2).Ticks, TimeSpan.FromMinutes(1).Ticks));
    }

    /// <summary>The live display's figures as one compact line (plain output).</summary>
    private string FiguresLine(RolloutStatusView view, TimelinePoint point, DateTimeOffset now) => string.Create(CultureInfo.InvariantCulture,
        $"{now:HH:mm:ss.f} {"figures",-8} {view.Phase,-10} {view.ExposurePercent:0.###}% reads {view.Reads.ToString().ToLowerInvariant()}" +
        $" | legacy {point.LegacyRps:0} req/s, err {point.LegacyErrorRate:P2}, p95 {Ms(point.LegacyP95Ms)}" +
        $" | new {point.NewRps:0} req/s, err {point.NewErrorRate:P2}, p95 {Ms(point.NewP95Ms)}" +
        $" | feed lag {point.FeedLag:N0} | drift {point.DriftRate:P3} (reconciliations {_reconcileRuns}, last {_lastReconcileDrifted:N0}/{_lastReconcileCompared:N0})" +
        $" | next: {Next(view, interactive: false)}");

    private string Next(RolloutStatusView view, bool interactive = true)
    {
        var now = DateTimeOffset.UtcNow;
        string In(DateTimeOffset? until) => until is { } u ? string.Create(CultureInfo.InvariantCulture, $"{u:HH:mm:ss.f} (in {Math.Max(0, (u - now).TotalSeconds):0.0} s)") : "-";
        return view.Waiting.Kind switch
        {
            "bake" => $"end of bake{(view.Waiting.Extension > 0 ? $" (extension {view.Waiting.Extension})" : string.Empty)} at {In(view.Waiting.Until)}",
            "approval" => _settings.Approve == ApproveMode.Auto
                ? $"approving (auto) — timeout at {In(view.Waiting.Until)}"
                : interactive
                    ? $"approval until {In(view.Waiting.Until)}: press a to approve, r to reject, or 'rollout approve {view.Feature}' elsewhere"
                    : $"approval until {In(view.Waiting.Until)}: 'rollout approve {view.Feature}' (or reject) in another terminal",
            "paused" => $"paused: 'rollout resume {view.Feature}' to go on",
            _ => view.Status,
        };
    }

    private static string Ms(double? ms) => ms is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v:0.#} ms") : "-";

    private void PrintSummary(RunRecord record, string reportPath)
    {
        foreach (var note in _notes.Distinct())
        {
            Say("note: " + note);
        }

        if (_settings.Json)
        {
            Commands.JsonOutput.Write(_console, System.Text.Json.JsonSerializer.Serialize(new
            {
                feature = record.Feature,
                outcome = record.Outcome,
                reasons = record.Reasons,
                storesAgree = record.StoresAgree,
                storesCheck = record.StoresCheck,
                reads = record.Reads,
                writes = record.Writes,
                fellBack = record.FellBack,
                reconciliations = record.Reconciliations.Count,
                report = Path.GetFullPath(reportPath),
            }, RunRecord.Json));
            return;
        }

        var color = record.Outcome switch { "completed" => "green", "rolledBack" => "yellow", _ => "red" };
        _console.MarkupLine($"[{color} bold]{Markup.Escape(record.Outcome)}[/] after {(record.EndedAt - record.StartedAt).TotalSeconds:0} s");
        foreach (var reason in record.Reasons)
        {
            _console.MarkupLine($"  reason: {Markup.Escape(reason)}");
        }

        _console.MarkupLine(Markup.Escape($"workload: {record.Reads:N0} reads, {record.Writes:N0} writes ({record.FellBack:N0} new-path writes fell back to legacy)"));
        _console.MarkupLine(Markup.Escape($"stores: {(record.StoresAgree ? "the target equals the translated source" : "THE STORES DIFFER")}: {record.StoresCheck}"));
        _console.MarkupLine($"report: {Markup.Escape(Path.GetFullPath(reportPath))}");
    }

    /// <summary>Progress of a step: a bar on a terminal, lines otherwise; with --json, lines on stderr (stdout carries only the outcome).</summary>
    private Task<T> WithProgressAsync<T>(string title, Func<Action<double, string>, Task<T>> work) =>
        _settings.Json
            ? Commands.Embedded.PlainProgressAsync(_error.WriteLine, title, work)
            : Commands.Embedded.WithProgressAsync(_console, title, work);

    /// <summary>
    /// A line of plain output (no terminal): on stdout as it is (a log line is not wrapped at the console's width),
    /// or on stderr with --json (stdout carries only the JSON outcome).
    /// </summary>
    private void PlainLine(string line)
    {
        lock (_plainLock)
        {
            var writer = _settings.Json ? _error : _console.Profile.Out.Writer;
            writer.WriteLine(line);
            writer.Flush();
        }
    }

    private void Say(string line)
    {
        if (_settings.Json)
        {
            _error.WriteLine(line);
        }
        else
        {
            _console.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
        }
    }
}

/// <summary>Lets one reconciliation run at a time: the scheduled ones and the one a rollback triggers.</summary>
internal sealed class LockedReconciliationTrigger(IReconciliationTrigger inner, SemaphoreSlim gate, Action? started = null, Action<ReconciliationOutcome>? ended = null) : IReconciliationTrigger
{
    public async Task<ReconciliationOutcome> TriggerAsync(string feature, string reason, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken);
        try
        {
            started?.Invoke();
            var outcome = await inner.TriggerAsync(feature, reason, cancellationToken);
            ended?.Invoke(outcome);
            return outcome;
        }
        finally
        {
            gate.Release();
        }
    }
}

/// <summary>
/// Progress of a reconciliation the run waits for, fed from the reconciler's thread: a bar in the live display,
/// lines (one per tenth, and one at the end) in plain output.
/// </summary>
internal sealed class ReconcileProgress(string title, long total, Action<string>? plain)
{
    private readonly Commands.PlainProgress? _lines = plain is null ? null : new Commands.PlainProgress(plain, title);
    private long _compared;
    private long _drifted;
    private volatile bool _done;

    public string Title => title;

    public static double Percent(long compared, long total) => total <= 0 ? 0 : Math.Min(99.9, 100.0 * compared / total);

    public static string Keys(ReconcileRun run, long total) => Keys(run.Counts.Compared, run.Counts.Drifted, run.Counts.Repaired, total);

    private static string Keys(long compared, long drifted, long repaired, long total) =>
        string.Create(CultureInfo.InvariantCulture, $"{compared:N0}/{total:N0} keys, {drifted:N0} drifted, {repaired:N0} repaired");

    public void Report(ReconcileRun run)
    {
        Interlocked.Exchange(ref _compared, run.Counts.Compared);
        Interlocked.Exchange(ref _drifted, run.Counts.Drifted);
        _lines?.Report(Percent(run.Counts.Compared, total), Keys(run, total));
    }

    public void Finish(ReconciliationOutcome outcome)
    {
        Interlocked.Exchange(ref _compared, outcome.Compared);
        Interlocked.Exchange(ref _drifted, outcome.Drifted);
        _done = true;
        _lines?.Report(100, outcome.RunId is null
            ? outcome.Summary // skipped: another reconciliation of the feature was running
            : Keys(outcome.Compared, outcome.Drifted, outcome.Repaired, total));
    }

    /// <summary>The bar of the live display.</summary>
    public IRenderable Bar()
    {
        const int width = 30;
        var percent = _done ? 100 : Percent(Interlocked.Read(ref _compared), total);
        var filled = (int)Math.Round(width * percent / 100);
        return new Markup(string.Create(CultureInfo.InvariantCulture,
            $"[green]{new string('━', filled)}[/][grey]{new string('━', width - filled)}[/] {percent,5:0.0}% {Interlocked.Read(ref _compared):N0}/{total:N0} keys, {Interlocked.Read(ref _drifted):N0} drifted{(_done ? ", done" : string.Empty)}"));
    }
}

/// <summary>A host lifetime that leaves Ctrl+C and SIGTERM to the run (which rolls back before stopping the host).</summary>
internal sealed class RunHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

