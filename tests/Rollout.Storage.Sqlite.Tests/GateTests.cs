using System.Data.Common;
using Microsoft.Extensions.Time.Testing;
using Rollout.Core.DataPath;
using Rollout.Core.Exposure;
using Rollout.Core.Gate;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite.Tests;

public sealed class GateTests : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rollout-tests", Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero));
    private EmbeddedRollout _rollout = null!;

    public async Task InitializeAsync()
    {
        var spec = RolloutSpecLoader.Load(Pipeline.SpecJson).Spec!;
        _rollout = EmbeddedRollout.Open(_folder, spec, _time);
        await Source("""
            CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER, TotalCents INTEGER, Status TEXT);
            CREATE TABLE OrderLines (OrderId INTEGER NOT NULL, Line INTEGER NOT NULL, Sku TEXT NOT NULL, PRIMARY KEY (OrderId, Line));
            """);
        await _rollout.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await _rollout.DisposeAsync();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    [Fact]
    public async Task Unexposed_subject_takes_the_legacy_path_and_nothing_is_recorded_as_exposed()
    {
        using var gate = _rollout.Gate(Options());
        var legacyRan = false;

        var result = await gate.WriteAsync("user-1", (_, _) => throw new InvalidOperationException("must not run"), _ => { legacyRan = true; return Task.CompletedTask; });

        Assert.Equal(GateWriteOutcome.Legacy, result.Outcome);
        Assert.True(legacyRan);
        Assert.Empty(await _rollout.Rollouts.CountExposuresAsync("orders-v2"));
    }

    [Fact]
    public async Task Exposed_subject_commits_every_table_and_the_exposure_together()
    {
        await Expose(100);
        using var gate = _rollout.Gate(Options());

        var result = await gate.WriteAsync("user-1", (unit, ct) => PlaceOrder(unit, 1, ct), _ => throw new InvalidOperationException("legacy must not run"));

        Assert.Equal(GateWriteOutcome.Committed, result.Outcome);
        Assert.Equal((1L, 2L), (await Count("Orders"), await Count("OrderLines")));
        Assert.Equal(1, (await _rollout.Rollouts.CountExposuresAsync("orders-v2"))["full"]);
        // Only Orders is tracked: its insert is version 1, the version the target must reach for this subject.
        Assert.Equal(1, await _rollout.Rollouts.GetLastWriteVersionAsync("orders-v2", "user-1", CancellationToken.None));
    }

    [Fact]
    public async Task A_failure_after_some_writes_leaves_no_row_in_any_table_and_the_legacy_path_serves()
    {
        await Expose(100);
        using var gate = _rollout.Gate(Options());
        var legacyRan = false;

        var result = await gate.WriteAsync(
            "user-1",
            async (unit, ct) =>
            {
                await PlaceOrder(unit, 1, ct);
                throw new InvalidOperationException("payment service said no");
            },
            _ => { legacyRan = true; return Task.CompletedTask; });

        Assert.Equal(GateWriteOutcome.FellBackOnError, result.Outcome);
        Assert.Equal("payment service said no", result.Error!.Message);
        Assert.True(legacyRan);
        Assert.Equal((0L, 0L), (await Count("Orders"), await Count("OrderLines")));
        Assert.Empty(await _rollout.Rollouts.CountExposuresAsync("orders-v2"));
        Assert.Null(await _rollout.Rollouts.GetLastWriteVersionAsync("orders-v2", "user-1", CancellationToken.None));
        Assert.Equal(0, await _rollout.Source.GetCurrentVersionAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_new_path_past_the_timeout_rolls_back_and_the_legacy_path_serves()
    {
        await Expose(100);
        using var gate = _rollout.Gate(Options() with { Timeout = TimeSpan.FromMilliseconds(200) });
        var legacyRan = false;

        var result = await gate.WriteAsync(
            "user-1",
            async (unit, ct) =>
            {
                await PlaceOrder(unit, 1, ct);
                _time.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(TimeSpan.FromSeconds(30), _time, ct);
            },
            _ => { legacyRan = true; return Task.CompletedTask; });

        Assert.Equal(GateWriteOutcome.FellBackOnTimeout, result.Outcome);
        Assert.IsType<TimeoutException>(result.Error);
        Assert.True(legacyRan);
        Assert.Equal((0L, 0L), (await Count("Orders"), await Count("OrderLines")));
        Assert.Empty(await _rollout.Rollouts.CountExposuresAsync("orders-v2"));
    }

    [Fact]
    public async Task A_legacy_path_error_is_measured_and_rethrown()
    {
        using var gate = _rollout.Gate(Options());

        await Assert.ThrowsAsync<InvalidOperationException>(() => gate.WriteAsync("user-1", (_, _) => Task.CompletedTask, _ => throw new InvalidOperationException("legacy down")));

        var counts = await _rollout.Telemetry.CountAsync("orders-v2");
        Assert.Equal(1, counts[("write", "legacy", "error")]);
    }

    [Fact]
    public async Task Exposure_counts_match_committed_writes_only()
    {
        await Expose(100);
        using var gate = _rollout.Gate(Options());
        for (var i = 1; i <= 20; i++)
        {
            var fail = i % 3 == 0;
            await gate.WriteAsync($"user-{i}", async (unit, ct) =>
            {
                await PlaceOrder(unit, i, ct);
                if (fail)
                {
                    throw new InvalidOperationException("boom");
                }
            }, _ => Task.CompletedTask);
        }

        Assert.Equal(14, (await _rollout.Rollouts.CountExposuresAsync("orders-v2"))["full"]);
        Assert.Equal(14, await Count("Orders"));
        var counts = await _rollout.Telemetry.CountAsync("orders-v2");
        Assert.Equal(14, counts[("write", "new", "ok")]);
        Assert.Equal(6, counts[("write", "new", "error")]);
        Assert.Equal(6, counts[("write-fallback", "legacy", "ok")]);
    }

    [Fact]
    public async Task Setting_the_state_it_already_has_records_no_second_change()
    {
        var first = await _rollout.Rollouts.SetStateAsync("orders-v2", "canary", ExposureLevel.FromPercent(5), ReadMode.Live, "phase canary", CancellationToken.None);
        var again = await _rollout.Rollouts.SetStateAsync("orders-v2", "canary", ExposureLevel.FromPercent(5), ReadMode.Live, "phase canary (run again)", CancellationToken.None);
        var changed = await _rollout.Rollouts.SetStateAsync("orders-v2", "canary", ExposureLevel.FromPercent(5), ReadMode.Legacy, "reads back to legacy", CancellationToken.None);

        Assert.Equal(first.Generation, again.Generation);
        Assert.Equal(first.Generation + 1, changed.Generation);
        var history = await _rollout.Rollouts.ReadStateHistoryAsync("orders-v2");
        Assert.Equal(["phase canary", "reads back to legacy"], history.TakeLast(2).Select(h => h.Reason).ToArray());
        Assert.Single(history, h => h.Reason.StartsWith("phase canary", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Decisions_follow_the_stored_exposure_after_the_cache_expires()
    {
        using var gate = _rollout.Gate(Options() with { CacheTtl = TimeSpan.FromSeconds(5) });
        var subjects = Enumerable.Range(0, 2000).Select(i => $"user-{i}").ToArray();

        var before = await CountExposed(gate, subjects);
        await Expose(50);
        var cached = await CountExposed(gate, subjects);
        _time.Advance(TimeSpan.FromSeconds(6));
        var after = await CountExposed(gate, subjects);

        Assert.Equal(0, before);
        Assert.Equal(0, cached);
        Assert.InRange(after, 900, 1100);
    }

    [Fact]
    public async Task Shadow_reads_serve_legacy_and_record_matches_and_mismatches_but_not_changes_in_flight()
    {
        await Expose(0, ReadMode.Shadow);
        await Source("INSERT INTO Orders VALUES (1, 7, 100, 'new'), (2, 8, 200, 'new'), (3, 9, 300, 'new')");
        await _rollout.Processor("p").DrainAsync(CancellationToken.None);
        await Source("UPDATE Orders SET Status = 'changed' WHERE OrderId = 2");
        await Target("UPDATE documents_orders SET hash = '00000000000000000000000000000001' WHERE source_key = '[3]'");
        using var gate = _rollout.Gate(Options());

        var same = await gate.ReadAsync("user-1", new SourceKey("[1]"));
        var inFlight = await gate.ReadAsync("user-1", new SourceKey("[2]"));
        var differs = await gate.ReadAsync("user-1", new SourceKey("[3]"));

        Assert.Equal((RoutePath.Legacy, true), (same.ServedBy, same.ShadowMatch));
        Assert.Equal((RoutePath.Legacy, null), (inFlight.ServedBy, inFlight.ShadowMatch));
        Assert.Equal((RoutePath.Legacy, false), (differs.ServedBy, differs.ShadowMatch));
        Assert.NotNull(inFlight.Row);
        var window = await _rollout.Telemetry.QueryWindowAsync("orders-v2", _time.GetUtcNow().AddMinutes(-1), _time.GetUtcNow().AddMinutes(1));
        Assert.Equal((2, 1), (window.Drift.Compared, window.Drift.Drifted));

        // A target ahead of the row read (a newer change applied between the two reads) is not compared either.
        await _rollout.Processor("p").DrainAsync(CancellationToken.None);
        await Target("UPDATE documents_orders SET source_version = source_version + 50 WHERE source_key = '[1]'");
        Assert.Null((await gate.ReadAsync("user-1", new SourceKey("[1]"))).ShadowMatch);
        await Target("UPDATE documents_orders SET source_version = source_version - 50 WHERE source_key = '[1]'");

        // Once the pipeline has applied the change, the same read compares, and matches.
        await _rollout.Processor("p").DrainAsync(CancellationToken.None);
        Assert.True((await gate.ReadAsync("user-1", new SourceKey("[2]"))).ShadowMatch);
    }

    [Fact]
    public async Task Shadow_sampling_compares_the_configured_share()
    {
        await Expose(0, ReadMode.Shadow);
        await Source("INSERT INTO Orders VALUES (1, 7, 100, 'new')");
        await _rollout.Processor("p").DrainAsync(CancellationToken.None);
        using var gate = _rollout.Gate(Options() with { ShadowSampleRatio = 0.25 });

        var compared = 0;
        for (var i = 0; i < 100; i++)
        {
            compared += (await gate.ReadAsync($"user-{i}", new SourceKey("[1]"))).ShadowMatch is null ? 0 : 1;
        }

        Assert.Equal(25, compared);
    }

    [Fact]
    public async Task Live_reads_serve_the_target_only_once_it_has_the_subjects_last_write()
    {
        await Expose(100, ReadMode.Live);
        using var gate = _rollout.Gate(Options());
        await gate.WriteAsync("user-1", (unit, ct) => PlaceOrder(unit, 1, ct), _ => Task.CompletedTask);

        var beforeFeed = await gate.ReadAsync("user-1", new SourceKey("[1]"));
        await _rollout.Processor("p").DrainAsync(CancellationToken.None);
        var afterFeed = await gate.ReadAsync("user-1", new SourceKey("[1]"));

        Assert.Equal(RoutePath.Legacy, beforeFeed.ServedBy);
        Assert.Contains("last wrote version", beforeFeed.FallbackReason, StringComparison.Ordinal);
        Assert.NotNull(beforeFeed.Row);
        Assert.Equal(RoutePath.New, afterFeed.ServedBy);
        Assert.Contains("\"id\":\"1\"", afterFeed.Document!.Json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Live_reads_never_serve_a_document_older_than_the_subjects_write_when_a_later_write_is_pending()
    {
        await Source("INSERT INTO Orders VALUES (1, 7, 100, 'new')");                     // v1
        await _rollout.Processor("p").DrainAsync(CancellationToken.None);                  // target holds [1] at v1
        await Expose(100, ReadMode.Live);
        using var gate = _rollout.Gate(Options());
        await gate.WriteAsync("user-1", async (unit, ct) => await Exec(unit, "UPDATE Orders SET Status = 'mine' WHERE OrderId = 1", ct), _ => Task.CompletedTask); // v2
        await Source("INSERT INTO Orders VALUES (2, 7, 1, 'x'), (3, 7, 1, 'y'); UPDATE Orders SET TotalCents = 5 WHERE OrderId = 1"); // v3, v4, v5
        // One batch of two: rows 2 and 3 are applied, the checkpoint (4) passes the subject's write (2), [1] is not applied.
        await _rollout.Processor("p", batchSize: 2).RunOnceAsync(CancellationToken.None);

        var read = await gate.ReadAsync("user-1", new SourceKey("[1]"));

        Assert.Equal(RoutePath.Legacy, read.ServedBy);
        Assert.Contains("holds version 1", read.FallbackReason, StringComparison.Ordinal);
        Assert.True(read.Row!.TryGet("Status", out var status));
        Assert.Equal("mine", status);
    }

    [Fact]
    public async Task Health_window_separates_paths_and_counts_errors_and_timeouts()
    {
        await Expose(100);
        using var gate = _rollout.Gate(Options());
        await gate.WriteAsync("user-1", (unit, ct) => PlaceOrder(unit, 1, ct), _ => Task.CompletedTask);
        await gate.WriteAsync("user-2", (_, _) => throw new InvalidOperationException("x"), _ => Task.CompletedTask);
        await Expose(0);
        gate.Invalidate();
        await gate.WriteAsync("user-3", (_, _) => Task.CompletedTask, _ => Task.CompletedTask);

        var window = await _rollout.Telemetry.QueryWindowAsync("orders-v2", _time.GetUtcNow().AddMinutes(-1), _time.GetUtcNow().AddMinutes(1));

        Assert.Equal((2L, 1L), (window.Candidate.Count, window.Candidate.Errors));
        Assert.Equal((1L, 0L), (window.Legacy.Count, window.Legacy.Errors));
    }

    [Fact]
    public async Task Every_request_is_a_span_tagged_like_its_decision_so_a_trace_store_can_rebuild_the_health_window()
    {
        await Expose(100, ReadMode.Live);
        // The listener hears every test running in parallel: this test's spans are those of its own trace.
        var stopped = new System.Collections.Concurrent.ConcurrentQueue<System.Diagnostics.Activity>();
        using var testSource = new System.Diagnostics.ActivitySource("Rollout.Tests.GateSpans");
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == Rollout.Core.RolloutMetrics.Name || source == testSource,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        using var gate = _rollout.Gate(Options());

        System.Diagnostics.ActivityTraceId trace;
        using (var test = testSource.StartActivity("test"))
        {
            trace = test!.TraceId;
            await gate.WriteAsync("user-1", (_, _) => throw new InvalidOperationException("boom"), _ => Task.CompletedTask);
            await gate.WriteAsync("user-2", (_, _) => Task.CompletedTask, _ => Task.CompletedTask);
            await gate.ReadAsync("user-3", new SourceKey("[1]"));
        }

        var spans = stopped.Where(a => a.TraceId == trace).ToArray();

        static (string Name, object? Kind, object? Path, object? Outcome, System.Diagnostics.ActivityStatusCode Status) View(System.Diagnostics.Activity a) =>
            (a.OperationName, a.GetTagItem("rollout.kind"), a.GetTagItem("rollout.path"), a.GetTagItem("rollout.outcome"), a.Status);
        var gateSpans = spans.Where(a => a.OperationName.StartsWith("rollout.gate.", StringComparison.Ordinal)).Select(View).ToArray();
        Assert.Equal(
            [
                ("rollout.gate.write", "write", "new", "error", System.Diagnostics.ActivityStatusCode.Error), // the fallback does not hide it
                ("rollout.gate.write", "write", "new", "ok", System.Diagnostics.ActivityStatusCode.Unset),
                ("rollout.gate.read", "read", "new", "fallback", System.Diagnostics.ActivityStatusCode.Unset), // no document yet: legacy served
            ],
            gateSpans);
        Assert.All(spans.Where(a => a.OperationName.StartsWith("rollout.gate.", StringComparison.Ordinal)), a =>
        {
            Assert.Equal("orders-v2", a.GetTagItem("rollout.feature"));
            Assert.True(a.GetTagItem("rollout.duration_ms") is double ms && ms >= 0 && ms <= a.Duration.TotalMilliseconds + 1, "the measured duration, within the span");
        });
    }

    [Fact]
    public async Task Decisions_are_measured_with_feature_phase_exposure_path_and_outcome_tags()
    {
        await Expose(100);
        using var metrics = new Rollout.Core.RolloutMetrics();
        var seen = new List<(string Instrument, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Rollout.Core.RolloutMetrics.Name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var dictionary = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                dictionary[tag.Key] = tag.Value;
            }

            lock (seen)
            {
                seen.Add((instrument.Name, value, dictionary));
            }
        });
        listener.Start();
        await using var rollout = EmbeddedRollout.Open(_folder, _rollout.Spec, _time, metrics);
        using var gate = rollout.Gate(Options());

        await gate.WriteAsync("user-1", (_, _) => throw new InvalidOperationException("x"), _ => Task.CompletedTask);

        var decisions = seen.Where(s => s.Instrument == "rollout.gate.decisions").ToArray();
        Assert.Contains(decisions, d => Equals(d.Tags["rollout.path"], "new") && Equals(d.Tags["rollout.outcome"], "error")
            && Equals(d.Tags["rollout.feature"], "orders-v2") && Equals(d.Tags["rollout.phase"], "full") && Equals(d.Tags["rollout.exposure"], 100.0));
        Assert.Contains(decisions, d => Equals(d.Tags["rollout.path"], "legacy") && Equals(d.Tags["rollout.kind"], "write-fallback"));
    }

    private static GateOptions Options() => new() { Timeout = TimeSpan.FromSeconds(10), CacheTtl = TimeSpan.Zero };

    private Task Expose(decimal percent, ReadMode reads = ReadMode.Legacy) =>
        _rollout.Rollouts.SetStateAsync("orders-v2", "full", ExposureLevel.FromPercent(percent), reads, "test", CancellationToken.None);

    private static async Task<int> CountExposed(RolloutGate gate, IEnumerable<string> subjects)
    {
        var exposed = 0;
        foreach (var subject in subjects)
        {
            exposed += (await gate.DecideAsync(subject)).Path == RoutePath.New ? 1 : 0;
        }

        return exposed;
    }

    private static async Task PlaceOrder(IGateUnitOfWork unit, int id, CancellationToken ct)
    {
        await Exec(unit, $"INSERT INTO Orders VALUES ({id}, 7, 1990, 'new')", ct);
        await Exec(unit, $"INSERT INTO OrderLines VALUES ({id}, 1, 'sku-1')", ct);
        await Exec(unit, $"INSERT INTO OrderLines VALUES ({id}, 2, 'sku-2')", ct);
    }

    private static async Task Exec(IGateUnitOfWork unit, string sql, CancellationToken ct)
    {
        await using DbCommand command = unit.Connection.CreateCommand();
        command.Transaction = unit.Transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(ct);
    }

    private async Task Source(string sql)
    {
        await using var connection = await _rollout.SourceDatabase.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task Target(string sql)
    {
        await using var connection = await _rollout.TargetDatabase.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> Count(string table)
    {
        await using var connection = await _rollout.SourceDatabase.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
