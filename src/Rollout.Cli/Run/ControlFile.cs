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
        // Written aside and renamed: another terminal never reads half a file.
        var path = Path.Combine(folder, FileName);
        await File.WriteAllTextAsync(path + ".tmp", JsonSerializer.Serialize(this, RunRecord.Json), cancellationToken);
        File.Move(path + ".tmp", path, overwrite: true);
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

        ControlFile? control;
        try
        {
            control = JsonSerializer.Deserialize<ControlFile>(File.ReadAllText(path), RunRecord.Json);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return (null, $"{path} is unreadable ({e.Message}): the run that wrote it is gone; start a new one with 'rollout run <spec>'");
        }

        if (control is null || !IsAlive(control))
        {
            return (null, $"the rollout run that wrote {path} (process {control?.ProcessId}) is no longer running; start a new one with 'rollout run <spec>' (a finished run's report: 'rollout report {control?.Feature}')");
        }

        return (control, null);
    }

    /// <summary>The run's process is alive, and is the run (a process id reused by a later process is not).</summary>
    private static bool IsAlive(ControlFile control)
    {
        try
        {
            using var process = Process.GetProcessById(control.ProcessId);
            return !process.HasExited && process.StartTime.ToUniversalTime() <= control.StartedAt.UtcDateTime.AddSeconds(1);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
