using Spectre.Console;

namespace Rollout.Cli.Commands;

/// <summary>Machine output: one JSON document on stdout, written as it is.</summary>
internal static class JsonOutput
{
    /// <summary>
    /// Writes the document to the console's output stream, bypassing Spectre's rendering: a <c>Text</c> is wrapped at
    /// the console's width (80 columns on many terminals), which puts raw line breaks inside long JSON strings.
    /// </summary>
    public static void Write(IAnsiConsole console, string json)
    {
        var writer = console.Profile.Out.Writer;
        writer.WriteLine(json);
        writer.Flush();
    }
}
