using System.CommandLine;
using System.Globalization;
using Rollout.Core.DataPath;
using Rollout.Storage.Sqlite;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary><c>rollout init | seed | backfill | sync | dead-letters</c> on the embedded default.</summary>
internal static class DataPathCommands
{
    public static Command Init(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var createTable = new Option<bool>("--create-table") { Description = "Create an empty source table with the spec's key and mapped columns if it does not exist." };
        var command = new Command("init", "Set up change capture on the source table and the target, checkpoint, dead-letter and telemetry tables (idempotent).") { spec, data, createTable };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            if (parse.GetValue(createTable) && await SourceSeeder.CreateTableAsync(rollout, ct))
            {
                console.MarkupLineInterpolated($"created table [bold]{rollout.Source.TableName}[/]");
            }

            await rollout.InitializeAsync(ct);
            console.MarkupLineInterpolated($"[green]ready[/]: change capture on [bold]{rollout.Source.TableName}[/] (version {await rollout.Source.GetCurrentVersionAsync(ct)}), target [bold]{rollout.Target.DocumentTable}[/] in {rollout.Folder}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Seed(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var rows = new Option<int>("--rows") { Description = "Rows to add.", Required = true };
        var seed = new Option<int>("--seed") { Description = "Random seed (same seed, same rows).", DefaultValueFactory = _ => 1 };
        var command = new Command("seed", "Create the source table if needed and fill it with realistic generated rows (demos and rehearsals).") { spec, data, rows, seed };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            var count = parse.GetValue(rows);
            if (count <= 0)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: --rows must be positive");
                return ExitCodes.UsageOrIo;
            }

            await SourceSeeder.CreateTableAsync(rollout, ct);
            await Embedded.WithProgressAsync(console, "seed", async report =>
            {
                await SourceSeeder.SeedAsync(rollout, count, parse.GetValue(seed), done => report(100.0 * done / count, $"{done:N0}/{count:N0} rows"), ct);
                return 0;
            });
            console.MarkupLineInterpolated($"[green]seeded[/] {count:N0} rows into [bold]{rollout.Source.TableName}[/] ({await rollout.Source.CountAsync(ct):N0} in all)");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Backfill(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var batch = new Option<int>("--batch") { Description = "Rows per batch.", DefaultValueFactory = _ => 5000 };
        var command = new Command("backfill", "Copy the existing rows to the target in key order, consistently with the change feed; resumes where a crashed run stopped.") { spec, data, batch };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            var progress = await Embedded.WithProgressAsync(console, "backfill", report =>
                rollout.Backfill().RunAsync(parse.GetValue(batch), r => report(
                    r.Total == 0 ? 100 : 100.0 * r.Copied / r.Total,
                    string.Create(CultureInfo.InvariantCulture, $"{r.Copied:N0}/{r.Total:N0} rows, {r.RowsPerSecond:N0} rows/s, ETA {(r.Remaining is { } left ? left.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "-")}")), ct));
            var letters = await rollout.Target.ListAsync(rollout.Spec.Feature, includeResolved: false, ct);
            console.MarkupLineInterpolated($"[green]backfill complete[/]: {progress.Copied:N0} rows copied from version {progress.StartVersion}; {letters.Count} open dead letter(s). Run 'rollout sync' to apply changes since.");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Sync(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var batch = new Option<int>("--batch") { Description = "Changes per batch.", DefaultValueFactory = _ => 5000 };
        var follow = new Option<bool>("--follow") { Description = "Keep applying new changes until Ctrl+C." };
        var command = new Command("sync", "Run the dual-write processor: apply the change feed to the target from the last checkpoint.") { spec, data, batch, follow };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            var processor = rollout.Processor($"{Environment.MachineName}:{Environment.ProcessId}", parse.GetValue(batch));
            if (parse.GetValue(follow))
            {
                console.WriteLine("applying changes until Ctrl+C…");
                await processor.RunAsync(TimeSpan.FromMilliseconds(200), ct, e => parse.InvocationConfiguration.Error.WriteLine(
                    $"warning: a batch failed and is retried from the same checkpoint: {e.GetType().Name}: {e.Message}"));
                return ExitCodes.Ok;
            }

            var outcome = await processor.DrainAsync(ct, b => console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"batch: {b.Read} read, {b.Applied} applied, {b.Stale} stale, {b.DeadLettered} dead-lettered, checkpoint {b.Checkpoint}")));
            if (!outcome.LeaseHeld)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: another processor holds this feed's lease; it expires 30 s after its owner stops");
                return ExitCodes.Invalid;
            }

            console.MarkupLineInterpolated($"[green]in sync[/] at version {outcome.Checkpoint}: {outcome.Read:N0} changes read, {outcome.Applied:N0} applied, {outcome.Stale:N0} already applied, {outcome.DeadLettered:N0} dead-lettered");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command DeadLetters(IAnsiConsole console)
    {
        var spec = Embedded.SpecArgument();
        var data = Embedded.DataOption();
        var retry = new Option<bool>("--retry") { Description = "Re-read each key's current row and apply it if it translates now." };
        var all = new Option<bool>("--all") { Description = "Include resolved dead letters." };
        var command = new Command("dead-letters", "List the changes that could not be translated, with key, version, field and reason; --retry applies the ones that work now.") { spec, data, retry, all };
        command.SetAction((parse, ct) => Embedded.RunAsync(parse.GetValue(spec)!, parse.GetValue(data), parse.InvocationConfiguration.Error, async rollout =>
        {
            if (parse.GetValue(retry))
            {
                var (resolved, failing) = await rollout.Processor($"{Environment.MachineName}:{Environment.ProcessId}").RetryDeadLettersAsync(rollout.Source, ct);
                console.MarkupLineInterpolated($"retried: [green]{resolved} resolved[/], [yellow]{failing} still failing[/]");
            }

            var letters = await rollout.Target.ListAsync(rollout.Spec.Feature, parse.GetValue(all), ct);
            if (letters.Count == 0)
            {
                console.WriteLine("no dead letters");
                return ExitCodes.Ok;
            }

            var table = new Table().AddColumns("Id", "Key", "Version", "Field", "Column", "Kind", "Reason", "Attempts", "State");
            foreach (var letter in letters)
            {
                foreach (var error in letter.Errors.DefaultIfEmpty())
                {
                    table.AddRow(
                        letter.Id.ToString(CultureInfo.InvariantCulture), Markup.Escape(letter.Key.Text), letter.Version.ToString(CultureInfo.InvariantCulture),
                        Markup.Escape(error?.Field ?? "-"), Markup.Escape(error?.Column ?? "-"), error?.Kind.ToString() ?? "-", Markup.Escape(error?.Message ?? "-"),
                        letter.Attempts.ToString(CultureInfo.InvariantCulture), letter.ResolvedAt is null ? "open" : "resolved");
                }
            }

            console.Write(table);
            return letters.Any(l => l.ResolvedAt is null) ? ExitCodes.Invalid : ExitCodes.Ok;
        }));
        return command;
    }
}
