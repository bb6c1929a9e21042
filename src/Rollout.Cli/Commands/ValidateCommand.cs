using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Rollout.Core.Spec;
using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary><c>rollout validate &lt;spec&gt;</c>: every problem at once, exit 1 on any.</summary>
internal static class ValidateCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var spec = new Argument<FileInfo>("spec") { Description = "Path to a *.rollout.json file." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON (for scripts and CI)." };
        var command = new Command("validate", "Check a rollout spec and print every problem with its JSON path and a fix.") { spec, json };
        command.SetAction(parse => Run(console, parse.GetValue(spec)!, parse.GetValue(json), parse.InvocationConfiguration.Error));
        return command;
    }

    private static int Run(IAnsiConsole console, FileInfo file, bool asJson, TextWriter error)
    {
        var (result, ioError) = SpecFile.Load(file);
        if (result is null)
        {
            error.WriteLine($"error: {ioError}");
            return ExitCodes.UsageOrIo;
        }

        if (asJson)
        {
            var options = new JsonSerializerOptions(CliJsonContext.Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            var report = new ValidationReport(file.ToString(), result.IsValid, [.. result.Problems]);
            JsonOutput.Write(console, JsonSerializer.Serialize(report, new CliJsonContext(options).ValidationReport));
            return result.IsValid ? ExitCodes.Ok : ExitCodes.Invalid;
        }

        if (result.IsValid)
        {
            var s = result.Spec!;
            console.MarkupLineInterpolated(
                $"[green]valid[/]: {file} — feature [bold]{s.Feature}[/], {s.Phases.Count} phase(s) from {s.Phases[0].Exposure}% to {s.Phases[^1].Exposure}%, {s.Mapping.Count} mapped field(s)");
            return ExitCodes.Ok;
        }

        console.MarkupLineInterpolated($"[red]invalid[/]: {file} — {result.Problems.Count} problem(s)");
        foreach (var problem in result.Problems)
        {
            console.MarkupLineInterpolated($"  [yellow]{problem.Path}[/]: {problem.Message}");
            console.MarkupLineInterpolated($"      [grey]fix:[/] {problem.Hint}");
        }

        return ExitCodes.Invalid;
    }
}

internal sealed record ValidationReport(string File, bool Valid, SpecProblem[] Problems);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(ValidationReport))]
internal sealed partial class CliJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
