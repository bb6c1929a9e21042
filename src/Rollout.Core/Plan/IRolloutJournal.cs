namespace Rollout.Core.Plan;

/// <summary>One entry of a rollout's journal: a phase change, a verdict, an operator command, the end.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="At">When (orchestration time).</param>
/// <param name="Kind">phase, verdict, approval, command, refused, rollback, reconcile, finish…</param>
/// <param name="Phase">Phase name, empty before the first phase.</param>
/// <param name="ExposurePercent">Exposure in force after the entry.</param>
/// <param name="Detail">What happened, for people.</param>
/// <param name="Instance">The orchestration instance that wrote it.</param>
/// <param name="Sequence">Its position in the rollout (distinguishes equal entries at the same instant; a retried write keeps one).</param>
public sealed record RolloutJournalEntry(string Feature, DateTimeOffset At, string Kind, string Phase, decimal ExposurePercent, string Detail, string Instance, long Sequence = 0);

/// <summary>An append-only record of what happened during a rollout, for reports and audits.</summary>
public interface IRolloutJournal
{
    /// <summary>Appends an entry. Appending the same entry twice (an activity retried) keeps one.</summary>
    /// <param name="entry">The entry.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task AppendAsync(RolloutJournalEntry entry, CancellationToken cancellationToken);

    /// <summary>The entries of a feature, oldest first.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<RolloutJournalEntry>> ReadAsync(string feature, CancellationToken cancellationToken);
}
