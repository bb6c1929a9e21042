using Rollout.Core.Spec;

namespace Rollout.Cli.Commands;

/// <summary>Reads a spec file for a command, turning I/O failures into one clear message.</summary>
internal static class SpecFile
{
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
