namespace Rollout.Core.DataPath;

/// <summary>Where a backfill stands; saved after every batch so that it resumes after a crash.</summary>
/// <param name="StartVersion">Feed version recorded before the first row was copied.</param>
/// <param name="LastKey">Last key copied, null before the first batch.</param>
/// <param name="Copied">Rows copied so far.</param>
/// <param name="Completed">True when the snapshot was copied to the end.</param>
public sealed record BackfillProgress(long StartVersion, SourceKey? LastKey, long Copied, bool Completed);

/// <summary>Durable backfill progress.</summary>
public interface IBackfillProgressStore
{
    /// <summary>The saved progress, or null before the first run.</summary>
    /// <param name="name">Backfill name.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<BackfillProgress?> GetBackfillAsync(string name, CancellationToken cancellationToken);

    /// <summary>Saves progress.</summary>
    /// <param name="name">Backfill name.</param>
    /// <param name="progress">Progress.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task SaveBackfillAsync(string name, BackfillProgress progress, CancellationToken cancellationToken);
}

/// <summary>A progress report for people: rows done of total, rate and estimated time left.</summary>
/// <param name="Copied">Rows copied.</param>
/// <param name="Total">Rows in the table when the backfill started (an estimate: the table keeps changing).</param>
/// <param name="RowsPerSecond">Rate so far in this run.</param>
/// <param name="Remaining">Estimated time left, null when unknown.</param>
public sealed record BackfillReport(long Copied, long Total, double RowsPerSecond, TimeSpan? Remaining);

/// <summary>
/// Copies the rows that existed before dual writes began, consistently with the feed: record the feed's
/// current version first, copy a snapshot in key order in batches (each row with its own version, resumable
/// from the last key), and let the feed apply everything since the recorded version. Every copied row is a
/// version-guarded write, so a row the feed already applied in a newer version is left alone, and a change
/// that lands after the row was copied reaches the target through the feed.
/// </summary>
public sealed class Backfill
{
    private readonly string _name;
    private readonly Translation.DocumentTranslator _translator;
    private readonly IChangeFeed _feed;
    private readonly ISourceReader _source;
    private readonly ITargetStore _target;
    private readonly IBackfillProgressStore _progress;
    private readonly IDeadLetterStore _deadLetters;
    private readonly TimeProvider _time;
    private readonly Action<FaultPoint>? _fault;

    /// <summary>Creates a backfill.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="translator">Compiled mapping.</param>
    /// <param name="feed">The source feed (for the start version).</param>
    /// <param name="source">Snapshot reader.</param>
    /// <param name="target">Target store.</param>
    /// <param name="progress">Progress store.</param>
    /// <param name="deadLetters">Where untranslatable rows go.</param>
    /// <param name="time">Clock.</param>
    /// <param name="fault">Test hook.</param>
    public Backfill(string feature, Translation.DocumentTranslator translator, IChangeFeed feed, ISourceReader source, ITargetStore target,
        IBackfillProgressStore progress, IDeadLetterStore deadLetters, TimeProvider time, Action<FaultPoint>? fault = null)
    {
        Feature = feature;
        _name = $"{feature}/backfill";
        _translator = translator;
        _feed = feed;
        _source = source;
        _target = target;
        _progress = progress;
        _deadLetters = deadLetters;
        _time = time;
        _fault = fault;
    }

    /// <summary>Feature key.</summary>
    public string Feature { get; }

    /// <summary>Runs (or resumes) the backfill to the end of the table.</summary>
    /// <param name="batchSize">Rows per batch.</param>
    /// <param name="report">Called after each batch.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The final progress.</returns>
    public async Task<BackfillProgress> RunAsync(int batchSize, Action<BackfillReport>? report, CancellationToken cancellationToken)
    {
        var progress = await _progress.GetBackfillAsync(_name, cancellationToken);
        if (progress is { Completed: true })
        {
            return progress;
        }

        if (progress is null)
        {
            progress = new BackfillProgress(await _feed.GetCurrentVersionAsync(cancellationToken), null, 0, false);
            await _progress.SaveBackfillAsync(_name, progress, cancellationToken);
        }

        var total = await _source.CountAsync(cancellationToken);
        var started = _time.GetTimestamp();
        var copiedAtStart = progress.Copied;
        while (true)
        {
            var rows = await _source.ReadBatchAsync(progress.LastKey, batchSize, cancellationToken);
            if (rows.Count == 0)
            {
                progress = progress with { Completed = true };
                await _progress.SaveBackfillAsync(_name, progress, cancellationToken);
                report?.Invoke(new BackfillReport(progress.Copied, Math.Max(total, progress.Copied), 0, TimeSpan.Zero));
                return progress;
            }

            var (writes, failed) = WritePlan.Translate(Feature, _translator, rows.Select(r => (r.Key, r.Version, (Translation.SourceRow?)r.Row)).ToArray(), _time.GetUtcNow());
            await _target.ApplyAsync(writes, cancellationToken);
            if (failed.Count > 0)
            {
                await _deadLetters.AddAsync(failed, cancellationToken);
            }

            _fault?.Invoke(FaultPoint.BackfillAfterCopy);
            progress = progress with { LastKey = rows[^1].Key, Copied = progress.Copied + rows.Count };
            await _progress.SaveBackfillAsync(_name, progress, cancellationToken);

            var elapsed = _time.GetElapsedTime(started).TotalSeconds;
            var rate = elapsed > 0 ? (progress.Copied - copiedAtStart) / elapsed : 0;
            var left = Math.Max(0, total - progress.Copied);
            report?.Invoke(new BackfillReport(progress.Copied, Math.Max(total, progress.Copied), rate, rate > 0 ? TimeSpan.FromSeconds(left / rate) : null));
        }
    }
}
