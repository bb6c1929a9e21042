using System.Diagnostics;
using System.Text.Json;

namespace Rollout.Cli.Run;

/// <summary>
/// How other terminals reach a running <c>rollout run</c>: the address of its Durable Task sidecar (gRPC on
/// 127.0.0.1), written to <c>control.json</c> in the data folder while the run lives.
/// </summary>
internal sealed record ControlFile(int ProcessId, string Address, string Feature, DateTimeOffset StartedAt)
{
    public const string FileName = "control.json";

    public async Task WriteAsync(string folder, CancellationToken cancellationToken)
    {
        await File.WriteAllTextAsync(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, RunRecord.Json), cancellationToken);
    }

    public static void Delete(string folder)
    {
        try
        {
            File.Delete(Path.Combine(folder, FileName));
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The live run's control file, or null with the reason.</summary>
    public static (ControlFile? Control, string? Problem) Find(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            return (null, $"no rollout is running on {folder} (no {FileName}); start one with 'rollout run <spec>'");
        }

        var control = JsonSerializer.Deserialize<ControlFile>(File.ReadAllText(path), RunRecord.Json);
        if (control is null || !IsAlive(control.ProcessId))
        {
            return (null, $"the rollout run that wrote {path} (process {control?.ProcessId}) is no longer running; its last report is 'rollout report {control?.Feature}'");
        }

        return (control, null);
    }

    private static bool IsAlive(int processId)
    {
        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
