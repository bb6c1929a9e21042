using Rollout.Core.Translation;

namespace Rollout.Core.DataPath;

/// <summary>Where a fault can be injected (crash tests).</summary>
public enum FaultPoint
{
    /// <summary>After the batch was read and translated, before anything was written.</summary>
    BeforeApply,

    /// <summary>After the target applied the batch and its dead letters were recorded, before the checkpoint.</summary>
    AfterApplyBeforeCheckpoint,

    /// <summary>After the checkpoint was saved.</summary>
    AfterCheckpoint,

    /// <summary>Backfill: after a batch was copied, before its progress was saved.</summary>
    BackfillAfterCopy,
}

/// <summary>Settings of the dual-write processor.</summary>
public sealed record DualWriteOptions
{
    /// <summary>Changes per batch.</summary>
    public int BatchSize { get; init; } = 5000;

    /// <summary>How long a lease holds without renewal; renewed at a third of it while a batch runs, and before each checkpoint.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The owner id of this instance (unique per process).</summary>
    public required string InstanceId { get; init; }

    /// <summary>
    /// Failed attempts to apply a batch at one checkpoint before its changes are applied one at a time and the ones
    /// the target still refuses are dead-lettered (so one poison change cannot block the feed). Counted durably in the
    /// checkpoint store, across restarts and instances.
    /// </summary>
    public int MaxAttempts { get; init; } = DefaultMaxAttempts;

    /// <summary>Default of <see cref="MaxAttempts"/>, as the Azure SQL trigger binding's.</summary>
    public const int DefaultMaxAttempts = 5;
}

/// <summary>
/// The target cannot take writes now — unreachable, throttled, timed out, busy, or refusing this caller — which is no
/// fault of the changes: a batch that fails with it (or with <see cref="TimeoutException"/>,
/// <see cref="HttpRequestException"/> or a cancellation that is not the caller's) is retried from the same checkpoint
/// and never dead-lettered, however long the outage. Target adapters throw it for such failures of their store.
/// </summary>
public sealed class TargetUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TargetUnavailableException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    public TargetUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    /// <param name="innerException">The store's own failure.</param>
    public TargetUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Every change of a batch was refused when applied on its own (none for a reason that makes the target unavailable):
/// nothing was dead-lettered, since that may be a failure of the target the adapter could not classify; the next run
/// applies the oldest change alone, and dead-letters it if it is refused again.
/// </summary>
public sealed class ChangesRefusedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ChangesRefusedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    public ChangesRefusedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    /// <param name="innerException">The first change's failure.</param>
    public ChangesRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>What one batch did.</summary>
/// <param name="LeaseHeld">
/// False when another instance owns the feed: nothing was done, or the lease was lost mid-batch, in which case the
/// batch's writes may have reached the target but its checkpoint was not saved (the new owner replays it harmlessly).
/// </param>
/// <param name="Read">Changes read.</param>
/// <param name="Applied">Writes that changed the target.</param>
/// <param name="Stale">Writes skipped by the version guard.</param>
/// <param name="DeadLettered">Changes that could not be translated, or that the target refused on their own after <see cref="DualWriteOptions.MaxAttempts"/>.</param>
/// <param name="Checkpoint">Checkpoint after the batch.</param>
public sealed record BatchOutcome(bool LeaseHeld, int Read, int Applied, int Stale, int DeadLettered, long Checkpoint);

/// <summary>
/// Moves changes from the source feed to the target: read a batch after the checkpoint, translate each
/// change through the compiled mapping, apply version-guarded upserts and tombstones in one target batch,
/// dead-letter what cannot be translated, and only then advance the checkpoint. A crash anywhere replays the
/// batch; the version guard makes the replay harmless (at-least-once delivery, exactly-once effect).
/// One instance owns a feed at a time through a lease.
/// <para>
/// A batch the target refuses is retried from the same checkpoint by the next run, and the failure is counted in the
/// checkpoint store. A target that is unavailable (<see cref="TargetUnavailableException"/>, a timeout, a network error)
/// is only waited for: not counted, and nothing is dead-lettered for it, however long it lasts. Otherwise, at
/// <see cref="DualWriteOptions.MaxAttempts"/> the batch's changes are applied one at a time: those the target still
/// refuses become dead letters (<see cref="TranslationErrorKind.ApplyFailed"/>, with its reason), the rest are applied,
/// and the checkpoint moves on. If every change of the batch is refused on its own, nothing is dead-lettered
/// (<see cref="ChangesRefusedException"/>); the next run then takes the oldest change (its version) alone, so a feed
/// of poison changes still moves, one change per run at worst.
/// </para>
/// </summary>
public sealed class DualWriteProcessor
{
    private const int MaxReasonLength = 2000;

    private readonly string _feature;
    private readonly DocumentTranslator _translator;
    private readonly IChangeFeed _feed;
    private readonly ITargetStore _target;
    private readonly ICheckpointStore _checkpoints;
    private readonly IDeadLetterStore _deadLetters;
    private readonly ILeaseStore _leases;
    private readonly DualWriteOptions _options;
    private readonly TimeProvider _time;
    private readonly Action<FaultPoint>? _fault;
    private readonly RolloutMetrics? _metrics;
    private int _running;

    /// <summary>Creates a processor.</summary>
    /// <param name="feature">Feature key (names checkpoint and lease).</param>
    /// <param name="translator">Compiled mapping.</param>
    /// <param name="feed">Source change feed.</param>
    /// <param name="target">Target store.</param>
    /// <param name="checkpoints">Checkpoint store.</param>
    /// <param name="deadLetters">Dead-letter store.</param>
    /// <param name="leases">Lease store.</param>
    /// <param name="options">Settings.</param>
    /// <param name="time">Clock.</param>
    /// <param name="fault">Test hook: called at each <see cref="FaultPoint"/>; throw to simulate a crash.</param>
    /// <param name="metrics">Instruments, or null.</param>
    public DualWriteProcessor(
        string feature,
        DocumentTranslator translator,
        IChangeFeed feed,
        ITargetStore target,
        ICheckpointStore checkpoints,
        IDeadLetterStore deadLetters,
        ILeaseStore leases,
        DualWriteOptions options,
        TimeProvider time,
        Action<FaultPoint>? fault = null,
        RolloutMetrics? metrics = null)
    {
        _feature = feature;
        _translator = translator;
        _feed = feed;
        _target = target;
        _checkpoints = checkpoints;
        _deadLetters = deadLetters;
        _leases = leases;
        _options = options;
        _time = time;
        _fault = fault;
        _metrics = metrics;
    }

    /// <summary>Name of this feature's checkpoint and lease.</summary>
    public string FeedName => FeedNameFor(_feature);

    /// <summary>The processor's settings.</summary>
    public DualWriteOptions Options => _options;

    /// <summary>Name of a feature's dual-write checkpoint and lease.</summary>
    /// <param name="feature">Feature key.</param>
    public static string FeedNameFor(string feature) => $"{feature}/dualwrite";

    /// <summary>
    /// Processes one batch if this instance holds (or can take) the lease. The lease is renewed in the background at a
    /// third of <see cref="DualWriteOptions.LeaseDuration"/> while the batch runs (a batch slowed by throttling keeps
    /// it) and once more right before the checkpoint; if another instance took it meanwhile, the batch stops (its
    /// token is cancelled) and its checkpoint is not saved: the new owner replays it, which the version guard makes harmless.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<BatchOutcome> RunOnceAsync(CancellationToken cancellationToken)
    {
        // The lease's owner is this processor's instance id, so two calls of one processor would both hold it: one at a time.
        if (Interlocked.CompareExchange(ref _running, 1, 0) != 0)
        {
            return new BatchOutcome(false, 0, 0, 0, 0, await _checkpoints.GetAsync(FeedName, cancellationToken) ?? 0);
        }

        try
        {
            // The lease runs from when it was asked for, not from when the answer came back (a slow round trip must not make
            // the keeper think it holds the lease longer than it does).
            var acquiredAt = _time.GetTimestamp();
            if (!await _leases.TryAcquireAsync(FeedName, _options.InstanceId, _options.LeaseDuration, cancellationToken))
            {
                return new BatchOutcome(false, 0, 0, 0, 0, await _checkpoints.GetAsync(FeedName, cancellationToken) ?? 0);
            }

            var lease = new LeaseKeeper(this, acquiredAt, cancellationToken);
            await using (lease)
            {
                long? checkpoint = null;
                try
                {
                    checkpoint = await _checkpoints.GetAsync(FeedName, lease.Token) ?? 0;
                    return await RunBatchAsync(checkpoint.Value, lease, lease.Token);
                }
                catch (Exception) when (lease.Lost && !cancellationToken.IsCancellationRequested)
                {
                    // Whatever the cancelled work threw (SqlClient reports a cancelled command as a SqlException, not as a
                    // cancellation): the lease is gone, and the new owner replays the batch.
                    return new BatchOutcome(false, 0, 0, 0, 0, checkpoint ?? 0);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task<BatchOutcome> RunBatchAsync(long checkpoint, LeaseKeeper lease, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        using var activity = RolloutMetrics.Activities.StartActivity("rollout.dualwrite.batch");
        activity?.SetTag("rollout.feature", _feature);
        var attempts = await _checkpoints.GetFailuresAsync(FeedName, cancellationToken) is { } failures && failures.Position == checkpoint ? failures.Attempts : 0;
        // Past the limit, an isolation found every change failing: the oldest change (its version) alone, so the feed moves.
        var narrowed = attempts > _options.MaxAttempts;
        var changes = await _feed.ReadChangesAsync(checkpoint, narrowed ? 1 : _options.BatchSize, cancellationToken);
        if (changes.Count == 0)
        {
            return new BatchOutcome(true, 0, 0, 0, 0, checkpoint);
        }

        var now = _time.GetUtcNow();
        var (writes, failed) = WritePlan.Translate(_feature, _translator, changes.Select(c => (c.Key, c.Version, c.Row)).ToArray(), now);

        _fault?.Invoke(FaultPoint.BeforeApply);
        ApplyResult applied;
        if (attempts >= _options.MaxAttempts)
        {
            applied = await ApplyOneByOneAsync(writes, failed, checkpoint, narrowed, now, cancellationToken);
        }
        else
        {
            try
            {
                applied = await _target.ApplyAsync(writes, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // (Once this batch's token is cancelled, whatever the target threw is that cancellation: not counted.)
                // An unavailable target is only waited for: not counted, so that once it is back the feed goes on at full
                // batches. What the target refuses is counted towards the limit.
                if (IsUnavailable(e) || await _checkpoints.RecordFailureAsync(FeedName, checkpoint, Reason(e), cancellationToken) < _options.MaxAttempts)
                {
                    throw;
                }

                applied = await ApplyOneByOneAsync(writes, failed, checkpoint, narrowed: false, now, cancellationToken);
            }
        }

        if (failed.Count > 0)
        {
            await _deadLetters.AddAsync(failed, cancellationToken);
        }

        _fault?.Invoke(FaultPoint.AfterApplyBeforeCheckpoint);

        if (!await lease.ConfirmAsync(cancellationToken))
        {
            // Another instance owns the feed now: no checkpoint from here.
            return new BatchOutcome(false, 0, 0, 0, 0, checkpoint);
        }

        var last = changes[^1].Version;
        await _checkpoints.SaveAsync(FeedName, last, cancellationToken);
        _fault?.Invoke(FaultPoint.AfterCheckpoint);
        _metrics?.RecordBatch(_feature, changes.Count, applied.Applied, applied.Stale, failed.Count, _time.GetElapsedTime(started));
        activity?.SetTag("rollout.batch.read", changes.Count);
        activity?.SetTag("rollout.batch.checkpoint", last);
        return new BatchOutcome(true, changes.Count, applied.Applied, applied.Stale, failed.Count, last);
    }

    /// <summary>
    /// Runs batches until the checkpoint reaches the feed's version at the start (or the lease is held
    /// elsewhere), then releases the lease so that another instance can take over at once.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <param name="progress">Called after each batch.</param>
    /// <returns>The summed outcome.</returns>
    public Task<BatchOutcome> DrainAsync(CancellationToken cancellationToken, Action<BatchOutcome>? progress = null) =>
        DrainAsync(null, cancellationToken, progress);

    /// <summary>
    /// Runs batches while changes remain, within a time budget (a timer-triggered function's share of its
    /// invocation), then releases the lease. A batch is never cut short: the budget is checked before each one,
    /// so a drain ends at most one batch past it, with its checkpoint saved. Without a budget, stops at the feed's
    /// version at the start.
    /// </summary>
    /// <param name="budget">Time after which no new batch starts; null for "until the version at the start".</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <param name="progress">Called after each batch.</param>
    /// <returns>The summed outcome; <see cref="BatchOutcome.Read"/> is 0 and the lease not held when another instance drains.</returns>
    public async Task<BatchOutcome> DrainAsync(TimeSpan? budget, CancellationToken cancellationToken, Action<BatchOutcome>? progress = null)
    {
        if (budget is { } b && b <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(budget), budget, "The drain budget must be positive.");
        }

        var started = _time.GetTimestamp();
        long? target = budget is null ? await _feed.GetCurrentVersionAsync(cancellationToken) : null;
        var total = new BatchOutcome(true, 0, 0, 0, 0, 0);
        var release = true;
        try
        {
            while (true)
            {
                var batch = await RunOnceAsync(cancellationToken);
                release = batch.LeaseHeld; // not ours (another instance's, or another call's of this processor): not ours to give up
                total = new BatchOutcome(batch.LeaseHeld, total.Read + batch.Read, total.Applied + batch.Applied, total.Stale + batch.Stale,
                    total.DeadLettered + batch.DeadLettered, batch.Checkpoint);
                progress?.Invoke(batch);
                if (!batch.LeaseHeld || batch.Read == 0 || batch.Checkpoint >= target
                    || (budget is not null && (batch.Read < _options.BatchSize || _time.GetElapsedTime(started) >= budget)))
                {
                    return total;
                }
            }
        }
        finally
        {
            if (release)
            {
                await ReleaseLeaseAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Counts the feature's open dead letters (one query) and sets the <c>rollout.dualwrite.dead_letters.open</c> gauge
    /// to the count: the backlog the dead-letter alert watches. Any instance may count, lease or not.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The open dead letters.</returns>
    public async Task<long> RecordOpenDeadLettersAsync(CancellationToken cancellationToken)
    {
        var open = await _deadLetters.CountOpenAsync(_feature, cancellationToken);
        _metrics?.RecordOpenDeadLetters(_feature, open);
        return open;
    }

    /// <summary>Gives up the feed's lease (if this instance holds it), so that another instance can start at once.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public Task ReleaseLeaseAsync(CancellationToken cancellationToken) => _leases.ReleaseAsync(FeedName, _options.InstanceId, cancellationToken);

    /// <summary>
    /// Polls the feed until cancelled, sleeping <paramref name="idleDelay"/> when caught up. A failed batch (an unavailable
    /// target, a refused change below the retry limit) does not end the loop: it is reported to <paramref name="failed"/>
    /// and retried from the same checkpoint after <paramref name="idleDelay"/>, as the timer's next run would.
    /// </summary>
    /// <param name="idleDelay">Pause when there is nothing to do, the lease is held elsewhere or a batch failed.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <param name="failed">Told of each failed batch (the loop goes on).</param>
    public async Task RunAsync(TimeSpan idleDelay, CancellationToken cancellationToken, Action<Exception>? failed = null)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                BatchOutcome? batch = null;
                try
                {
                    batch = await RunOnceAsync(cancellationToken);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    failed?.Invoke(e);
                }

                if (batch is null || !batch.LeaseHeld || batch.Read < _options.BatchSize)
                {
                    await Task.Delay(idleDelay, _time, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping is not an error.
        }
        finally
        {
            await ReleaseLeaseAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Applies each write on its own; those the target refuses join <paramref name="deadLetters"/>. When every one of
    /// several writes fails (and the batch was not already narrowed to the oldest change), nothing is dead-lettered:
    /// the failure is counted and thrown, and the next run narrows the batch.
    /// </summary>
    private async Task<ApplyResult> ApplyOneByOneAsync(
        List<TargetWrite> writes, List<DeadLetter> deadLetters, long checkpoint, bool narrowed, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (applied, stale) = (0, 0);
        var refused = new List<DeadLetter>();
        Exception? first = null;
        foreach (var write in writes)
        {
            try
            {
                var result = await _target.ApplyAsync([write], cancellationToken);
                (applied, stale) = (applied + result.Applied, stale + result.Stale);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                if (IsUnavailable(e))
                {
                    // Not this change's fault: the whole batch waits for the target, and nothing of it is dead-lettered.
                    throw;
                }

                first ??= e;
                refused.Add(new DeadLetter(0, _feature, write.Key, write.SourceVersion, [new TranslationError("$", null, TranslationErrorKind.ApplyFailed, Reason(e))], now, 1, null));
            }
        }

        if (!narrowed && writes.Count > 1 && refused.Count == writes.Count)
        {
            var message = $"Every one of the {writes.Count} changes after checkpoint {checkpoint} was refused when applied on its own, so nothing was dead-lettered (it may be the target failing in a way it does not report as unavailable); the next run applies the oldest change alone. First failure: {Reason(first!)}";
            await _checkpoints.RecordFailureAsync(FeedName, checkpoint, message, cancellationToken);
            throw new ChangesRefusedException(message, first!);
        }

        deadLetters.AddRange(refused);
        return new ApplyResult(applied, stale);
    }

    /// <summary>
    /// A failure of the target rather than of the change: the adapter says so, or it is a timeout, a network error, or a
    /// cancellation that is not the caller's (an HTTP client's own timeout).
    /// </summary>
    private static bool IsUnavailable(Exception e) =>
        e is TargetUnavailableException or TimeoutException or HttpRequestException or OperationCanceledException;

    /// <summary>A failure's reason for a dead letter or the failure count: the exception's type and message, bounded.</summary>
    private static string Reason(Exception e)
    {
        var reason = $"{e.GetType().Name}: {e.Message}";
        return reason.Length <= MaxReasonLength ? reason : reason[..MaxReasonLength];
    }

    /// <summary>Retries open dead letters: re-reads each key's current row, translates it and applies it if it now works.</summary>
    /// <param name="source">Source reader.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>How many were resolved and how many still fail.</returns>
    public async Task<(int Resolved, int StillFailing)> RetryDeadLettersAsync(ISourceReader source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        var resolved = 0;
        var failing = 0;
        foreach (var letter in await _deadLetters.ListAsync(_feature, includeResolved: false, cancellationToken))
        {
            var current = await source.GetAsync(letter.Key, cancellationToken);
            TargetWrite write;
            if (current is null)
            {
                // Deleted since: a versioned tombstone is the right outcome; the version guard keeps any newer write.
                write = new TargetWrite(letter.Key, letter.Version, null);
            }
            else
            {
                var result = _translator.Translate(current.Row);
                if (!result.IsSuccess)
                {
                    failing++;
                    await _deadLetters.RecordRetryAsync(letter.Id, false, current.Version, result.Errors, cancellationToken);
                    continue;
                }

                write = new TargetWrite(letter.Key, Math.Max(current.Version, letter.Version), result.Document);
            }

            try
            {
                // Version-guarded like every write: a newer version the feed applied meanwhile is kept.
                await _target.ApplyAsync([write], cancellationToken);
            }
            catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                failing++;
                await _deadLetters.RecordRetryAsync(letter.Id, false, write.SourceVersion, [new TranslationError("$", null, TranslationErrorKind.ApplyFailed, Reason(e))], cancellationToken);
                continue;
            }

            await _deadLetters.RecordRetryAsync(letter.Id, true, write.SourceVersion, [], cancellationToken);
            resolved++;
        }

        return (resolved, failing);
    }

    /// <summary>
    /// Keeps the feed's lease while a batch runs: renews it at a third of its duration; when a renewal finds another
    /// owner (or renewals kept failing until it expired), marks it lost and cancels the batch's token.
    /// </summary>
    private sealed class LeaseKeeper : IAsyncDisposable
    {
        private readonly DualWriteProcessor _owner;
        private readonly CancellationTokenSource _batch;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewing;
        private volatile bool _lost;
        private long _renewed;

        public LeaseKeeper(DualWriteProcessor owner, long acquiredAt, CancellationToken cancellationToken)
        {
            _owner = owner;
            _renewed = acquiredAt; // the timestamp taken before RunOnceAsync asked for the lease
            _batch = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _renewing = RenewAsync();
        }

        /// <summary>Cancelled when the caller cancels or the lease is lost.</summary>
        public CancellationToken Token => _batch.Token;

        /// <summary>True once another instance holds the lease.</summary>
        public bool Lost => _lost;

        /// <summary>
        /// Stops the background renewal and makes sure the lease is still ours for the checkpoint: false when it is not.
        /// Renews once more unless it was taken or renewed within a third of its duration (then no other instance can
        /// hold it: it has two thirds of its duration left, and saving a checkpoint is one statement).
        /// </summary>
        public async Task<bool> ConfirmAsync(CancellationToken cancellationToken)
        {
            await StopAsync();
            var options = _owner._options;
            if (!_lost && _owner._time.GetElapsedTime(Interlocked.Read(ref _renewed)) < options.LeaseDuration / 3)
            {
                return true;
            }

            if (_lost || !await _owner._leases.TryAcquireAsync(_owner.FeedName, options.InstanceId, options.LeaseDuration, cancellationToken))
            {
                _lost = true;
                return false;
            }

            return true;
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
            _batch.Dispose();
        }

        private async Task StopAsync()
        {
            // Cancel, not CancelAsync: CancelAsync queues the callbacks to the thread pool and waits for them, and a busy
            // pool (synchronous SQLite calls elsewhere in the process) delayed every batch's end by up to a second.
#pragma warning disable CA1849
            _stop.Cancel();
#pragma warning restore CA1849
            await _renewing;
        }

        private async Task RenewAsync()
        {
            var options = _owner._options;
            try
            {
                while (true)
                {
                    await Task.Delay(options.LeaseDuration / 3, _owner._time, _stop.Token);
                    bool held;
                    try
                    {
                        var at = _owner._time.GetTimestamp();
                        held = await _owner._leases.TryAcquireAsync(_owner.FeedName, options.InstanceId, options.LeaseDuration, _stop.Token);
                        if (held)
                        {
                            Interlocked.Exchange(ref _renewed, at);
                        }
                    }
                    catch (Exception e) when (!(e is OperationCanceledException && _stop.IsCancellationRequested))
                    {
                        // A failed renewal is not a lost lease: it holds until it expires, and the next renewal may succeed.
                        held = _owner._time.GetElapsedTime(Interlocked.Read(ref _renewed)) < options.LeaseDuration;
                    }

                    if (!held)
                    {
                        _lost = true;
                        await _batch.CancelAsync();
                        return;
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // The batch ended.
            }
        }
    }
}
