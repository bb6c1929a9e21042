namespace Rollout.Storage.SqlServer;

/// <summary>
/// The feed's checkpoint is older than the oldest version SQL Server still holds changes from for the table
/// (<c>CHANGE_TRACKING_MIN_VALID_VERSION</c>): retention clean-up ran, the table was truncated, or tracking was
/// re-enabled. Changes in between are gone; reading on would silently lose them, so the target must be re-backfilled.
/// </summary>
public sealed class ChangeTrackingVersionTooOldException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="table">The source table.</param>
    /// <param name="afterVersion">The version the reader asked to continue from.</param>
    /// <param name="minValidVersion">The table's minimum valid version.</param>
    public ChangeTrackingVersionTooOldException(string table, long afterVersion, long minValidVersion)
        : base($"The change feed of {table} is at version {afterVersion}, but SQL Server only holds changes from version {minValidVersion} on " +
               "(the retention clean-up ran, or the table was truncated or its change tracking re-enabled): changes in between are lost. " +
               "A re-backfill is needed: run the backfill again to re-copy the table, and resume the feed from the version the backfill starts at.")
    {
        Table = table;
        AfterVersion = afterVersion;
        MinValidVersion = minValidVersion;
    }

    /// <summary>Creates the exception.</summary>
    public ChangeTrackingVersionTooOldException()
        : this(string.Empty, 0, 0)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    public ChangeTrackingVersionTooOldException(string message)
        : base(message)
    {
        Table = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    /// <param name="innerException">Cause.</param>
    public ChangeTrackingVersionTooOldException(string message, Exception innerException)
        : base(message, innerException)
    {
        Table = string.Empty;
    }

    /// <summary>The source table.</summary>
    public string Table { get; }

    /// <summary>The version the reader asked to continue from.</summary>
    public long AfterVersion { get; }

    /// <summary>The table's minimum valid version.</summary>
    public long MinValidVersion { get; }
}
