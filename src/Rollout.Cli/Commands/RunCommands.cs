using System.CommandLine;
using System.Globalization;
using Rollout.Cli.Run;
using Rollout.Orchestration;
using Rollout.Orchestration.Hosting;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary><c>rollout run</c> and the commands that talk to a running rollout from another terminal.</summary>
internal static class RunCommands
{
    public static Command Run(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var workload = new Option<string>("--workload") { Description = "Traffic to drive through the gate (synthetic: many subjects reading and updating rows).", DefaultValueFactory = _ => "synthetic" };
        var rows = new Option<int?>("--rows") { Description = "Create and seed the source table with N realistic rows when it is empty." };
        var rps = new Option<int>("--rps") { Description = "Requests per second of the workload.", DefaultValueFactory = _ => 300 };
        var writes = new Option<double>("--writes") { Description = "Share of the workload's requests that are writes (0 to 1); the rest are reads.", DefaultValueFactory = _ => 0.3 };
        var speed = new Option<double>("--speed") { Description = "Run the plan X times faster than its durations say (600: an hour in 6 s). 1 is a real-time rehearsal.", DefaultValueFactory = _ => 1 };
        var approve = new Option<string>("--approve") { Description = "auto: approve at once on the snapshot shown; prompt: press a/r in this terminal, or use 'rollout approve' elsewhere.", DefaultValueFactory = _ => "prompt" };
        var inject = new Option<string[]>("--inject") { Description = $"Fault in one phase, repeatable: {Injection.Format}. drift changes that share of the target's documents when the phase starts.", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print the outcome as JSON (progress goes to stderr)." };
        var backend = new Option<string>("--backend")
        {
            Description = "in-memory: the orchestration lives in this process. azure-storage: it is kept in Azure Storage (Azurite locally; connection string in Rollout__Orchestration__AzureStorageConnectionString), so a run that dies is resumed by the next 'rollout run'.",
            DefaultValueFactory = _ => "in-memory",
        };
        var command = new Command("run", "Take a feature through a whole rollout on the embedded default: seed, backfill, dual writes, reconciliation, the phased orchestration and a workload through the gate; then a report.")
        {
            spec, data, workload, rows, rps, writes, speed, approve, inject, json, backend,
        };
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var (loaded, code) = SpecFile.LoadValid(parse.GetValue(spec)!, error);
            if (loaded is null)
            {
                return RunExitCodes.UsageOrInput;
            }

            var problems = new List<string>();
            if (parse.GetValue(workload) != "synthetic")
            {
                problems.Add($"--workload '{parse.GetValue(workload)}' is not known; the one workload built in is 'synthetic'");
            }

            if (parse.GetValue(rows) is < 1)
            {
                problems.Add("--rows must be at least 1");
            }

            if (parse.GetValue(rps) is < 1 or > 100_000)
            {
                problems.Add("--rps must be between 1 and 100000");
            }

            if (parse.GetValue(writes) is var w && !(w is >= 0 and <= 1))
            {
                problems.Add("--writes must be a share between 0 and 1, for example --writes 0.3 for 30% writes");
            }

            if (parse.GetValue(speed) is var s && (!(s >= 1) || double.IsInfinity(s)))
            {
                problems.Add("--speed must be a number of at least 1 (1 runs the spec's durations as written)");
            }

            ApproveMode mode = ApproveMode.Prompt;
            if (!Enum.TryParse(parse.GetValue(approve), ignoreCase: true, out mode) || !Enum.IsDefined(mode))
            {
                problems.Add($"--approve '{parse.GetValue(approve)}' is not known: use auto or prompt");
            }

            var durable = parse.GetValue(backend) switch
            {
                "in-memory" => false,
                "azure-storage" => true,
                var other => (bool?)null,
            };
            if (durable is null)
            {
                problems.Add($"--backend '{parse.GetValue(backend)}' is not known: use in-memory or azure-storage");
            }
            else if (durable.Value && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("Rollout__Orchestration__AzureStorageConnectionString")))
            {
                problems.Add("--backend azure-storage needs the storage connection string in the environment variable Rollout__Orchestration__AzureStorageConnectionString (for Azurite: its blob, queue and table endpoints and the development account)");
            }

            var injections = new List<Injection>();
            foreach (var text in parse.GetValue(inject) ?? [])
            {
                var (injection, problem) = Injection.Parse(text, loaded);
                if (problem is not null)
                {
                    problems.Add(problem);
                }
                else
                {
                    injections.Add(injection!);
                }
            }

            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                {
                    error.WriteLine($"error: {problem}");
                }

                return RunExitCodes.UsageOrInput;
            }

            var folder = parse.GetValue(data)?.FullName ?? Path.Combine(".rollout", loaded.Feature);
            var settings = new RunSettings(parse.GetValue(spec)!, loaded, folder, parse.GetValue(rows), parse.GetValue(rps), parse.GetValue(speed), mode, injections, parse.GetValue(json), parse.GetValue(writes), durable == true);
            try
            {
                return await RunSession.RunAsync(settings, console, error, ct);
            }
            catch (Microsoft.Data.Sqlite.SqliteException e)
            {
                error.WriteLine($"error: the embedded stores in {Path.GetFullPath(folder)} could not be used: {e.Message}. If an older version of rollout made them, move the folder aside (or pass another --data) and run again.");
                return RunExitCodes.UsageOrInput;
            }
        });
        return command;
    }

    public static Command Status(IAnsiConsole console)
    {
        var (target, data) = Target();
        var json = new Option<bool>("--json") { Description = "Print the status as JSON." };
        var command = new Command("status", "Where a running rollout is and why: phase, exposure, reads, last verdict, what it waits for, history.") { target, data, json };
        command.SetAction(async (parse, ct) =>
        {
            return await WithControlAsync(parse.GetValue(target), parse.GetValue(data), parse.InvocationConfiguration.Error, async (control, feature) =>
            {
                var status = await control.GetStatusAsync(feature, ct);
                if (status?.View is not { } view)
                {
                    parse.InvocationConfiguration.Error.WriteLine($"error: the rollout of '{feature}' has not reported a status yet; try again in a moment");
                    return ExitCodes.Invalid;
                }

                if (parse.GetValue(json))
                {
                    JsonOutput.Write(console, System.Text.Json.JsonSerializer.Serialize(view, RunRecord.Json));
                    return ExitCodes.Ok;
                }

                PrintStatus(console, view);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    public static IEnumerable<Command> Operator(IAnsiConsole console)
    {
        yield return OperatorCommand(console, RolloutEvents.Approve, "Approve the phase that waits for approval, on the status shown (or --snapshot N, the one you looked at).");
        yield return OperatorCommand(console, RolloutEvents.Reject, "Reject the phase that waits for approval: the rollout rolls back.");
        yield return OperatorCommand(console, RolloutEvents.Pause, "Hold the rollout in its phase (health is still watched).");
        yield return OperatorCommand(console, RolloutEvents.Resume, "Go on after a pause (the phase bakes again).");
        yield return OperatorCommand(console, RolloutEvents.Rollback, "Roll back now: exposure 0, reads legacy, reconcile.");
        yield return OperatorCommand(console, RolloutEvents.SkipBake, "End the current bake now (only where the phase allows it).");
    }

    public static Command Report(IAnsiConsole console)
    {
        var (target, data) = Target("the run under .rollout/ that ended last");
        var output = new Option<FileInfo?>("--out") { Description = "Where to write the HTML report (its folder is created if missing). Default: report.html in the data folder." };
        var json = new Option<bool>("--json") { Description = "Print the run record as JSON instead." };
        var command = new Command("report", "The report of the last 'rollout run' of a feature (without one: of the run under .rollout/ that ended last): a self-contained HTML file (charts, verdicts, reconciliation), or JSON.") { target, data, output, json };
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var folder = parse.GetValue(target) is null && parse.GetValue(data) is null
                ? LastRunFolder(error)
                : ResolveFolder(parse.GetValue(target), parse.GetValue(data), error);
            if (folder is null)
            {
                return ExitCodes.Invalid;
            }

            var record = await RunRecord.LoadAsync(folder, ct);
            if (record is null)
            {
                error.WriteLine($"error: no run is recorded in {folder} (no {RunRecord.FileName}); run 'rollout run <spec>' first");
                return ExitCodes.Invalid;
            }

            if (parse.GetValue(json))
            {
                JsonOutput.Write(console, System.Text.Json.JsonSerializer.Serialize(record, RunRecord.Json));
                return ExitCodes.Ok;
            }

            var path = parse.GetValue(output)?.FullName ?? Path.Combine(folder, "report.html");
            if (!await OutputFolder.TryWriteAsync(path, ReportWriter.Html(record), "the report", "--out", error, ct))
            {
                return ExitCodes.Invalid;
            }

            console.WriteLine($"report: {Path.GetFullPath(path)}");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command OperatorCommand(IAnsiConsole console, string name, string description)
    {
        var (target, data) = Target();
        var by = new Option<string>("--by") { Description = "Who (kept in the history).", DefaultValueFactory = _ => Environment.UserName };
        var comment = new Option<string?>("--comment") { Description = "Why (kept in the history)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the rollout's answer. Past it the command exits 1 unconfirmed (it was delivered: check 'rollout status').", DefaultValueFactory = _ => 30 };
        var command = new Command(name, description) { target, data, by, comment, timeout };
        Option<long?>? snapshot = null;
        if (name == RolloutEvents.Approve)
        {
            snapshot = new Option<long?>("--snapshot") { Description = "The status snapshot you looked at (from 'rollout status'); default: the status printed now." };
            command.Options.Add(snapshot);
        }

        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(timeout) is var seconds && !(seconds > 0 && seconds <= 3600))
            {
                parse.InvocationConfiguration.Error.WriteLine("error: --timeout must be a number of seconds above 0 and at most 3600, for example --timeout 30");
                return ExitCodes.Invalid;
            }

            return await WithControlAsync(parse.GetValue(target), parse.GetValue(data), parse.InvocationConfiguration.Error, async (control, feature) =>
            {
                long? seen = null;
                if (snapshot is not null)
                {
                    seen = parse.GetValue(snapshot);
                    if (seen is null)
                    {
                        // The approver sees the evidence now, and approves on exactly that.
                        var status = await control.GetStatusAsync(feature, ct);
                        if (status?.View is { } view)
                        {
                            PrintStatus(console, view);
                            seen = view.Snapshot;
                        }
                    }
                }

                var answer = await control.SendAsync(feature, name, parse.GetValue(by)!, parse.GetValue(comment), seen, TimeSpan.FromSeconds(seconds), ct);
                if (answer.Accepted)
                {
                    console.MarkupLine($"[green]{Markup.Escape(name)}[/]: {Markup.Escape(answer.Message)}");
                    return ExitCodes.Ok;
                }

                parse.InvocationConfiguration.Error.WriteLine($"refused: {answer.Message}");
                return ExitCodes.Invalid;
            });
        });
        return command;
    }

    private static (Argument<string?> Target, Option<DirectoryInfo?> Data) Target(string defaultFeature = "the one rollout running under .rollout/") =>
        (new Argument<string?>("feature") { Description = $"The feature key (or its spec file). Default: {defaultFeature}.", Arity = ArgumentArity.ZeroOrOne }, Embedded.DataOption());

    private static async Task<int> WithControlAsync(string? target, DirectoryInfo? data, TextWriter error, Func<RolloutControl, string, Task<int>> work)
    {
        var folder = ResolveFolder(target, data, error);
        if (folder is null)
        {
            return ExitCodes.Invalid;
        }

        var (control, problem) = ControlFile.Find(folder);
        if (control is null)
        {
            error.WriteLine($"error: {problem}");
            return ExitCodes.Invalid;
        }

        var (client, services) = RemoteRolloutControl.Connect(control.Address);
        await using (services)
        {
            try
            {
                return await work(client, control.Feature);
            }
            catch (TimeoutException e)
            {
                // Not confirmed is not accepted: exit 1, like a refusal (2 means "rolled back" for 'rollout run').
                error.WriteLine($"error: {e.Message} (not confirmed)");
                return ExitCodes.Invalid;
            }
            catch (Grpc.Core.RpcException e)
            {
                error.WriteLine($"error: the rollout run (process {control.ProcessId}) did not answer at {control.Address} ({e.StatusCode}): it may be ending; check 'rollout status {control.Feature}', or 'rollout report {control.Feature}' once it has ended");
                return ExitCodes.Invalid;
            }
        }
    }

    /// <summary>The data folder of a feature: --data, else .rollout/&lt;feature&gt; (a spec file names its feature), else the one live run under .rollout.</summary>
    private static string? ResolveFolder(string? target, DirectoryInfo? data, TextWriter error)
    {
        if (data is not null)
        {
            return data.FullName;
        }

        if (target is not null)
        {
            if (File.Exists(target) && target.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                var (spec, _) = SpecFile.LoadValid(new FileInfo(target), error);
                return spec is null ? null : Path.Combine(".rollout", spec.Feature);
            }

            return Path.Combine(".rollout", target);
        }

        var live = Directory.Exists(".rollout")
            ? Directory.GetDirectories(".rollout").Where(d => File.Exists(Path.Combine(d, ControlFile.FileName))).ToArray()
            : [];
        if (live.Length == 1)
        {
            return live[0];
        }

        error.WriteLine(live.Length == 0
            ? "error: no rollout is running under .rollout/; name the feature (or --data DIR)"
            : $"error: several rollouts are running ({string.Join(", ", live.Select(Path.GetFileName))}); name the feature");
        return null;
    }

    /// <summary>The data folder under .rollout whose run ended last (its run.json is the newest); the report of "the last run".</summary>
    private static string? LastRunFolder(TextWriter error)
    {
        var finished = Directory.Exists(".rollout")
            ? Directory.GetDirectories(".rollout").Select(d => new FileInfo(Path.Combine(d, RunRecord.FileName))).Where(f => f.Exists).ToArray()
            : [];
        if (finished.Length == 0)
        {
            error.WriteLine($"error: no finished run is recorded under {Path.GetFullPath(".rollout")} (no {RunRecord.FileName}); run 'rollout run <spec>' first, or name the feature (or --data DIR)");
            return null;
        }

        return finished.MaxBy(f => f.LastWriteTimeUtc)!.DirectoryName;
    }

    private static void PrintStatus(IAnsiConsole console, RolloutStatusView view)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        grid.AddRow("status", Markup.Escape($"{view.Status} — phase {view.Phase} ({view.PhaseIndex + 1} of {view.PhaseCount}), exposure {view.ExposurePercent:0.###}%, reads {view.Reads.ToString().ToLowerInvariant()}"));
        grid.AddRow("waiting for", Markup.Escape(view.Waiting.Kind + (view.Waiting.Until is { } u ? " until " + u.ToString("HH:mm:ss.f", CultureInfo.InvariantCulture) : string.Empty)));
        if (view.LastVerdict is { } v)
        {
            grid.AddRow("last verdict", Markup.Escape($"{v.Kind} at {v.At:HH:mm:ss.f} ({(v.Final ? "end of bake" : "during bake")}): {v.Summary}"));
            foreach (var b in v.Breaches)
            {
                grid.AddRow(string.Empty, Markup.Escape(b.Detail));
            }
        }

        foreach (var reason in view.Reasons)
        {
            grid.AddRow("reason", Markup.Escape(reason));
        }

        if (view.LastCommand is { } c)
        {
            grid.AddRow("last command", Markup.Escape($"{c.Command}: {(c.Accepted ? "accepted" : "refused")}: {c.Message}"));
        }

        grid.AddRow("snapshot", view.Snapshot.ToString(CultureInfo.InvariantCulture));
        console.Write(new Panel(grid).Header($"rollout {Markup.Escape(view.Feature)}"));
        var history = new Table().Border(TableBorder.Simple).AddColumns("time", "kind", "phase", "what");
        foreach (var h in view.History.TakeLast(12))
        {
            history.AddRow(Markup.Escape(h.At.ToString("HH:mm:ss.f", CultureInfo.InvariantCulture)), Markup.Escape(h.Kind), Markup.Escape(h.Phase), Markup.Escape(h.Detail));
        }

        console.Write(history);
    }
}
