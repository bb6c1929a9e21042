using Rollout.Core.Translation;

namespace Rollout.Core.DataPath;

/// <summary>Turns source rows into version-guarded target writes, and the rows that cannot be translated into dead letters.</summary>
internal static class WritePlan
{
    /// <summary>Translates each row; a null row (the source row is gone) becomes a tombstone.</summary>
    /// <param name="feature">Feature key, for dead letters.</param>
    /// <param name="translator">Compiled mapping.</param>
    /// <param name="rows">Key, version and current row of each change.</param>
    /// <param name="now">Time stamp of new dead letters.</param>
    public static (List<TargetWrite> Writes, List<DeadLetter> Failed) Translate(
        string feature, DocumentTranslator translator, IReadOnlyCollection<(SourceKey Key, long Version, SourceRow? Row)> rows, DateTimeOffset now)
    {
        var writes = new List<TargetWrite>(rows.Count);
        var failed = new List<DeadLetter>();
        foreach (var (key, version, row) in rows)
        {
            if (row is null)
            {
                writes.Add(new TargetWrite(key, version, null));
                continue;
            }

            var result = translator.Translate(row);
            if (result.IsSuccess)
            {
                writes.Add(new TargetWrite(key, version, result.Document));
            }
            else
            {
                failed.Add(new DeadLetter(0, feature, key, version, result.Errors, now, 1, null));
            }
        }

        return (writes, failed);
    }
}
