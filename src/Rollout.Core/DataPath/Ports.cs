using Rollout.Core.Translation;

namespace Rollout.Core.DataPath;

/// <summary>What a change did to a row, net of everything since the reader's version.</summary>
public enum ChangeOperation
{
    /// <summary>The row was created after the reader's version (and still exists).</summary>
    Insert,

    /// <summary>The row existed and changed.</summary>
    Update,

    /// <summary>The row no longer exists.</summary>
    Delete,
}

/// <summary>
/// One net change from the feed: the row's key, the version of its latest change, what the change was, and
/// the row as it is now (null when deleted). Same semantics as SQL Server change tracking's
/// <c>CHANGETABLE(CHANGES …)</c> joined to the table.
/// </summary>
/// <param name="Key">Row key.</param>
/// <param name="Version">Version of the row's latest change.</param>
/// <param name="Operation">Net operation.</param>
/// <param name="Row">Current row, null for a delete.</param>
public sealed record SourceChange(SourceKey Key, long Version, ChangeOperation Operation, SourceRow? Row);

/// <summary>A change feed over one source table.</summary>
public interface IChangeFeed
{
    /// <summary>The highest version committed so far (0 when nothing was tracked yet).</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<long> GetCurrentVersionAsync(CancellationToken cancellationToken);

    /// <summary>Net changes with a version above <paramref name="afterVersion"/>, in version order, at most <paramref name="maxChanges"/>.</summary>
    /// <param name="afterVersion">Last version already applied.</param>
    /// <param name="maxChanges">Batch size.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<SourceChange>> ReadChangesAsync(long afterVersion, int maxChanges, CancellationToken cancellationToken);
}

/// <summary>A row of a consistent snapshot, with the version of its latest tracked change (0 if none).</summary>
/// <param name="Key">Row key.</param>
/// <param name="Version">Row version.</param>
/// <param name="Row">Row values.</param>
public sealed record SnapshotRow(SourceKey Key, long Version, SourceRow Row);

/// <summary>Reads a source table in key order, for backfill and reconciliation.</summary>
public interface ISourceReader
{
    /// <summary>Rows in the table.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<long> CountAsync(CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="batchSize"/> rows after <paramref name="afterKey"/> in key order, each with its version, read in one snapshot.</summary>
    /// <param name="afterKey">Last key already read, or null to start.</param>
    /// <param name="batchSize">Rows per batch.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<SnapshotRow>> ReadBatchAsync(SourceKey? afterKey, int batchSize, CancellationToken cancellationToken);

    /// <summary>
    /// One row by key, with its version; null when it does not exist. The key matches exactly, as <see cref="SortKey"/>
    /// compares keys: where the key column compares case- or accent-insensitively (SQL Server's default collation, SQLite's
    /// NOCASE), the row stored as <c>"A"</c> is not the row <c>"a"</c>, so that a key whose spelling changed is seen as one
    /// key deleted and another written, as the target and the reconciliation see it.
    /// </summary>
    /// <param name="key">Row key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<SnapshotRow?> GetAsync(SourceKey key, CancellationToken cancellationToken);
}

/// <summary>
/// A version-guarded write to the target: an upsert of a translated document, or a tombstone when
/// <see cref="Document"/> is null. Applied only if <see cref="SourceVersion"/> is newer than what the target
/// holds for the key, so replays and races never move a document backwards.
/// </summary>
/// <param name="Key">Source key.</param>
/// <param name="SourceVersion">Version of the source change.</param>
/// <param name="Document">Translated document, or null for a delete.</param>
/// <param name="Repair">
/// A reconciliation repair: also applied when the stored version is equal (a divergent or tampered document at
/// the same version), never when it is newer, so a repair racing a live change cannot overwrite it.
/// </param>
public sealed record TargetWrite(SourceKey Key, long SourceVersion, TranslatedDocument? Document, bool Repair = false);

/// <summary>What a batch of writes did.</summary>
/// <param name="Applied">Writes that changed the target.</param>
/// <param name="Stale">Writes ignored because the target already held the same or a newer version.</param>
public sealed record ApplyResult(int Applied, int Stale);

/// <summary>A document as the target holds it.</summary>
/// <param name="Key">Source key.</param>
/// <param name="Id">Document id.</param>
/// <param name="PartitionKey">Partition key value.</param>
/// <param name="SourceVersion">Source version it came from.</param>
/// <param name="Hash">Content hash, null for a tombstone.</param>
/// <param name="Json">Document JSON, null for a tombstone.</param>
/// <param name="IsTombstone">True when the source row was deleted.</param>
public sealed record TargetDocument(SourceKey Key, string? Id, string? PartitionKey, long SourceVersion, ContentHash? Hash, string? Json, bool IsTombstone);

/// <summary>The new document store.</summary>
public interface ITargetStore
{
    /// <summary>Applies a batch of version-guarded writes durably (all of the batch, or none on failure).</summary>
    /// <param name="writes">Writes; at most one per key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<ApplyResult> ApplyAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken);

    /// <summary>The document of a source key (live or tombstone), or null.</summary>
    /// <param name="key">Source key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<TargetDocument?> GetAsync(SourceKey key, CancellationToken cancellationToken);
}

/// <summary>Durable feed positions.</summary>
public interface ICheckpointStore
{
    /// <summary>The last version applied by a feed consumer, or null before its first batch.</summary>
    /// <param name="name">Consumer name (feature and table).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<long?> GetAsync(string name, CancellationToken cancellationToken);

    /// <summary>Records the last applied version. Never moves backwards.</summary>
    /// <param name="name">Consumer name.</param>
    /// <param name="version">Version applied.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task SaveAsync(string name, long version, CancellationToken cancellationToken);

    /// <summary>
    /// The failed attempts recorded at a feed consumer's position (the checkpoint it could not move past), or null
    /// when none is recorded; a saved checkpoint past the position clears it.
    /// </summary>
    /// <param name="name">Consumer name.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<FeedFailures?> GetFailuresAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Counts one more failed attempt to move past <paramref name="position"/> (durably: the count survives restarts
    /// and is shared by every instance) and returns the count at that position: 1 when the last failure recorded was
    /// at an older position. A failure at a position older than the one recorded (an instance that has not seen the
    /// checkpoint move on) is not recorded and returns 0, so it can neither reset nor overwrite the current count.
    /// </summary>
    /// <param name="name">Consumer name.</param>
    /// <param name="position">The checkpoint the failed batch started after.</param>
    /// <param name="error">Why it failed (kept for operators; no secret: an exception's message).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<int> RecordFailureAsync(string name, long position, string error, CancellationToken cancellationToken);
}

/// <summary>Failed attempts of a feed consumer to move past one checkpoint.</summary>
/// <param name="Position">The checkpoint the failing batches started after.</param>
/// <param name="Attempts">Failed attempts at that position.</param>
/// <param name="LastError">The last failure's reason.</param>
/// <param name="LastFailed">When it last failed.</param>
public sealed record FeedFailures(long Position, int Attempts, string LastError, DateTimeOffset LastFailed);

/// <summary>A change that could not be applied, kept with its reason until a person or a retry resolves it.</summary>
/// <param name="Id">Store id (0 before it is stored).</param>
/// <param name="Feature">Feature key.</param>
/// <param name="Key">Source key.</param>
/// <param name="Version">Source version of the change.</param>
/// <param name="Errors">Every field that failed, or one <see cref="TranslationErrorKind.ApplyFailed"/> error with the target's reason.</param>
/// <param name="FirstSeen">When it was first dead-lettered.</param>
/// <param name="Attempts">Attempts so far (the first failure and each retry).</param>
/// <param name="ResolvedAt">When a retry applied it, or null.</param>
public sealed record DeadLetter(long Id, string Feature, SourceKey Key, long Version, IReadOnlyList<TranslationError> Errors, DateTimeOffset FirstSeen, int Attempts, DateTimeOffset? ResolvedAt)
{
    /// <summary>
    /// True when the change translated but the target kept refusing it (<see cref="TranslationErrorKind.ApplyFailed"/>),
    /// rather than a row that cannot be translated.
    /// </summary>
    public bool IsApplyFailure => Errors.Any(e => e.Kind == TranslationErrorKind.ApplyFailed);
}

/// <summary>Dead-letter records.</summary>
public interface IDeadLetterStore
{
    /// <summary>Records failed changes (one open record per key: a newer failure replaces the older one).</summary>
    /// <param name="letters">Dead letters.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task AddAsync(IReadOnlyList<DeadLetter> letters, CancellationToken cancellationToken);

    /// <summary>Open (or all) dead letters of a feature, oldest first.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="includeResolved">Include resolved ones.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<IReadOnlyList<DeadLetter>> ListAsync(string feature, bool includeResolved, CancellationToken cancellationToken);

    /// <summary>How many dead letters of a feature are open (not resolved): the backlog, in one query.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<long> CountOpenAsync(string feature, CancellationToken cancellationToken);

    /// <summary>Marks a dead letter resolved, or counts a failed retry.</summary>
    /// <param name="id">Dead-letter id.</param>
    /// <param name="resolved">True when the retry applied the change.</param>
    /// <param name="appliedVersion">The source version the retry applied; a record that meanwhile took a newer failure stays open.</param>
    /// <param name="errors">The latest errors when not resolved.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task RecordRetryAsync(long id, bool resolved, long appliedVersion, IReadOnlyList<TranslationError> errors, CancellationToken cancellationToken);
}

/// <summary>Leases that make one instance the owner of a feed.</summary>
public interface ILeaseStore
{
    /// <summary>Takes or renews the lease when it is free, expired or already ours.</summary>
    /// <param name="name">Lease name.</param>
    /// <param name="owner">Caller's instance id.</param>
    /// <param name="duration">How long the lease holds without renewal.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>True when the caller holds the lease.</returns>
    Task<bool> TryAcquireAsync(string name, string owner, TimeSpan duration, CancellationToken cancellationToken);

    /// <summary>Gives the lease up if the caller holds it.</summary>
    /// <param name="name">Lease name.</param>
    /// <param name="owner">Caller's instance id.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken);
}
