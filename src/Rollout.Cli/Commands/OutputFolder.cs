namespace Rollout.Cli.Commands;

/// <summary>Folders and files the commands write: created when missing, or one clear error (what, where, how to fix).</summary>
internal static class OutputFolder
{
    /// <summary>Creates the folder (and its parents) if needed; false, after printing why and what to pass instead, when it cannot.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="what">What it is for, for the message ("the data folder").</param>
    /// <param name="option">The option that names it ("--data").</param>
    /// <param name="error">Where the message goes.</param>
    public static bool TryCreate(string folder, string what, string option, TextWriter error)
    {
        try
        {
            Directory.CreateDirectory(folder);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            error.WriteLine($"error: cannot create {what} {Path.GetFullPath(folder)}: {e.Message}; pass {option} a folder you can write to");
            return false;
        }
    }

    /// <summary>Writes a text file, creating its folder if needed; false, after printing why and what to pass instead, when it cannot.</summary>
    /// <param name="path">The file.</param>
    /// <param name="text">Its content.</param>
    /// <param name="what">What it is, for the message ("the report").</param>
    /// <param name="option">The option that names it ("--out").</param>
    /// <param name="error">Where the message goes.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<bool> TryWriteAsync(string path, string text, string what, string option, TextWriter error, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, text, cancellationToken);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            error.WriteLine($"error: cannot write {what} to {full}: {e.Message}; pass {option} a file in a folder you can write to");
            return false;
        }
    }
}
