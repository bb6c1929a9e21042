using System.CommandLine;
using System.Globalization;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary><c>rollout reconcile</c> and <c>rollout audit</c> on the embedded default.</summary>
internal static class ReconcileCommands
{
    public static Command Reconcile(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var deep = new Option<bool>("--deep") { Description = "Also re-translate every source row and compare content hashes (catches mapping bugs)." };
        var report = new Option<bool>("--report") { Description = "Only record drift; overrides the spec's repair mode." };
        var from = new Option<string?>("--from") { Description = "Exclusive lower key bound as a JSON array, e.g. [1000]." };
        var to = new Option<string?>("--to") { Description = "Inclusive upper key bound as a JSON array, e.g. [2000]." };
        var segment = new Option<int>("--segment") { Description = "Source rows per segment.", DefaultValueFactory = _ => 5000 };
        var rate = new Option<int?>("--max-rows-per-second") { Description = "Rate limit; the spec's reconciliation.maxRowsPerSecond by default (0 = unbounded)." };
        var noBuckets = new Option<bool>("--no-buckets")
        {
            Description = "Quick mode: compute every segment's digest from the rows instead of comparing the bucket digests both stores maintain (a check that does not rest on them).",
        };
        var command = new Command("reconcile", "Compare source and target, repair drift (the source wins) and record an audit trail; resumes an interrupted run.")
        {
            spec, data, deep, report, from, to, segment, rate, noBuckets,
        };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (!TryKey(parse.GetValue(from), "--from", error, out var low) || !TryKey(parse.GetValue(to), "--to", error, out var high))
            {
                return ExitCodes.UsageOrIo;
            }

            var options = rollout.ReconcileOptions(parse.GetValue(deep) ? ReconcileDepth.Deep : ReconcileDepth.Quick) with
            {
                From = low,
                To = high,
                SegmentSize = Math.Max(1, parse.GetValue(segment)),
                UseBuckets = !parse.GetValue(noBuckets),
            };
            if (parse.GetValue(report))
            {
                options = options with { Mode = RepairMode.Report };
            }

            if (parse.GetValue(rate) is { } limit)
            {
                options = options with { MaxRowsPerSecond = Math.Max(0, limit) };
            }

            var total = Math.Max(1, await rollout.Source.CountAsync(ct));
            var run = await Embedded.WithProgressAsync(console, "reconcile", report => rollout.Reconciler().RunAsync(options,
                r => report(Math.Min(100, 100.0 * r.Counts.Compared / total), string.Create(CultureInfo.InvariantCulture, $"{r.Counts.Compared:N0} keys, {r.Counts.Drifted:N0} drifted")), ct));
            PrintRun(console, run);
            return run.Status == ReconcileStatus.Completed && run.Counts.Flagged == 0 ? ExitCodes.Ok : ExitCodes.Invalid;
        }));
        return command;
    }

    public static Command Audit(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var run = new Option<long?>("--run") { Description = "List the affected keys of this run." };
        var last = new Option<int>("--last") { Description = "How many runs to list.", DefaultValueFactory = _ => 20 };
        var command = new Command("audit", "List reconciliation runs, or the affected keys of one run (--run ID).") { spec, data, run, last };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            if (parse.GetValue(run) is { } id)
            {
                var keys = await rollout.Audit.ListKeysAsync(id, ct);
                var table = new Table().Title($"run {id}: {keys.Count} affected key(s)").AddColumns("Key", "Kind", "Action", "Source v", "Target v", "Before", "After", "At", "Detail");
                foreach (var key in keys)
                {
                    table.AddRow(Markup.Escape(key.Key.Text), key.Kind.ToString(), key.Action.ToString(), Show(key.SourceVersion), Show(key.TargetVersion),
                        Short(key.BeforeHash?.ToString()), Short(key.AfterHash?.ToString()), key.At.ToString("u", CultureInfo.InvariantCulture), Markup.Escape(key.Detail ?? "-"));
                }

                console.Write(table);
                return ExitCodes.Ok;
            }

            var runs = await rollout.Audit.ListRunsAsync(rollout.Spec.Feature, Math.Max(1, parse.GetValue(last)), ct);
            if (runs.Count == 0)
            {
                console.WriteLine("no reconciliation runs yet; run 'rollout reconcile' first");
                return ExitCodes.Ok;
            }

            var list = new Table().AddColumns("Run", "Started", "Ended", "Depth", "Mode", "Status", "Compared", "Missing", "Extra", "Divergent", "Stale", "Ahead", "Untransl.", "Repaired", "Flagged");
            foreach (var r in runs)
            {
                var c = r.Counts;
                list.AddRow(Show(r.Id), r.Started.ToString("u", CultureInfo.InvariantCulture), r.Ended?.ToString("u", CultureInfo.InvariantCulture) ?? "-", r.Depth.ToString(), r.Mode.ToString(), r.Status.ToString(),
                    Show(c.Compared), Show(c.Missing), Show(c.Extra), Show(c.Divergent), Show(c.Stale), Show(c.TargetAhead), Show(c.Untranslatable), Show(c.Repaired), Show(c.Flagged));
            }

            console.Write(list);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static void PrintRun(IAnsiConsole console, ReconcileRun run)
    {
        var c = run.Counts;
        console.MarkupLineInterpolated($"run {run.Id} ({run.Depth.ToString().ToLowerInvariant()}, {run.Mode.ToString().ToLowerInvariant()}): [bold]{run.Status}[/] — {c.Compared:N0} keys compared, drift {c.DriftRate:P3}");
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  missing {c.Missing}, extra {c.Extra}, divergent {c.Divergent}, stale {c.Stale}, target ahead {c.TargetAhead}, untranslatable {c.Untranslatable}"));
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  repaired {c.Repaired}, flagged for a person {c.Flagged}; target rows read one by one {c.TargetRowsRead:N0}, source rows re-read {c.FetchedInFull:N0}"));
        if (c.Drifted > 0)
        {
            console.WriteLine($"  see 'rollout audit <spec> --run {run.Id}' for every affected key");
        }
    }

    private static bool TryKey(string? text, string option, TextWriter error, out SourceKey? key)
    {
        key = null;
        if (text is null)
        {
            return true;
        }

        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != System.Text.Json.JsonValueKind.Array || document.RootElement.GetArrayLength() == 0)
            {
                throw new System.Text.Json.JsonException();
            }

            key = SourceKey.From([.. document.RootElement.EnumerateArray().Select(e => e.ValueKind == System.Text.Json.JsonValueKind.Number ? e.GetInt64() : (object?)e.GetString())]);
            _ = key.Sort;
            return true;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidOperationException or ArgumentException)
        {
            error.WriteLine($"error: {option} {text} is not a key; write the key values as a JSON array, e.g. [1000] or [\"t1\",\"c9\"]");
            return false;
        }
    }

    private static string Show(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "-";

    private static string Short(string? hash) => hash is null ? "-" : hash[..8];
}
