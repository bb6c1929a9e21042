using Rollout.Core.Spec;

namespace Rollout.Cli.Commands;

/// <summary>Reads a spec file for a command, turning I/O failures into one clear message.</summary>
internal static class SpecFile
{
    /// <summary>Loads a spec that must be valid; otherwise prints why (pointing to 'rollout validate') and returns the exit code.</summary>
    public static (RolloutSpec? Spec, int ExitCode) LoadValid(FileInfo file, TextWriter error)
    {
        var (result, ioError) = Load(file);
        if (result is null)
        {
            error.WriteLine($"error: {ioError}");
            return (null, ExitCodes.UsageOrIo);
        }

        if (!result.IsValid)
        {
            error.WriteLine($"error: {file} is not valid ({result.Problems.Count} problem(s)); run 'rollout validate {file}' to see them");
            return (null, ExitCodes.Invalid);
        }

        return (result.Spec, ExitCodes.Ok);
    }

    public static (SpecLoadResult? Result, string? Error) Load(FileInfo file)
    {
        if (!file.Exists)
        {
            return (null, $"spec file '{file}' not found (give the path to a *.rollout.json file, for example samples/orders.rollout.json)");
        }

        try
        {
            return (RolloutSpecLoader.Load(File.ReadAllText(file.FullName)), null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, $"cannot read spec file '{file}': {ex.Message}");
        }
    }
}
