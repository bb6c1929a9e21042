using Microsoft.Data.Sqlite;

namespace Rollout.Cli.Tests;

/// <summary>A temporary data folder and spec file for one `rollout run` test, removed afterwards.</summary>
internal sealed class RunFolder(string name, string specJson) : IDisposable
{
    public string Data { get; } = Path.Combine(Path.GetTempPath(), name, Guid.NewGuid().ToString("N"));

    public string Spec { get; } = CliRunner.TempSpec(specJson);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Data, recursive: true);
            File.Delete(Spec);
        }
        catch (IOException)
        {
            // Best effort: the OS cleans the temp folder.
        }
    }
}
