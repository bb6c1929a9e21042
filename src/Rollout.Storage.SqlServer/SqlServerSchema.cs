namespace Rollout.Storage.SqlServer;

/// <summary>
/// The idempotent set-up T-SQL: change tracking on the database and the source table, snapshot isolation, and the
/// tables of the stores that live beside the source (checkpoints, leases). Every statement is guarded, so running it
/// again changes nothing. <c>ALTER DATABASE</c> cannot run inside a transaction: run it as its own batch (as
/// <see cref="SqlServerSourceStore.InitializeAsync"/> does).
/// </summary>
public static class SqlServerSchema
{
    /// <summary>Checkpoints table.</summary>
    public const string CheckpointsTable = "[dbo].[rollout_checkpoints]";

    /// <summary>Failed attempts of a feed consumer at its checkpoint.</summary>
    public const string FeedFailuresTable = "[dbo].[rollout_feed_failures]";

    /// <summary>Leases table.</summary>
    public const string LeasesTable = "[dbo].[rollout_leases]";

    /// <summary>Backfill progress table.</summary>
    public const string BackfillsTable = "[dbo].[rollout_backfills]";

    /// <summary>Exposure state table.</summary>
    public const string StateTable = "[dbo].[rollout_state]";

    /// <summary>Exposure state history table.</summary>
    public const string StateHistoryTable = "[dbo].[rollout_state_history]";

    /// <summary>Exposure ledger: one row per committed new-path write.</summary>
    public const string ExposuresTable = "[dbo].[rollout_exposures]";

    /// <summary>Each subject's last new-path write version.</summary>
    public const string SubjectWritesTable = "[dbo].[rollout_subject_writes]";

    /// <summary>The rollout journal.</summary>
    public const string JournalTable = "[dbo].[rollout_journal]";

    /// <summary>Dead letters.</summary>
    public const string DeadLettersTable = "[dbo].[rollout_dead_letters]";

    /// <summary>Reconciliation runs.</summary>
    public const string ReconcileRunsTable = "[dbo].[rollout_reconcile_runs]";

    /// <summary>Keys affected by reconciliation runs.</summary>
    public const string ReconcileKeysTable = "[dbo].[rollout_reconcile_keys]";

    /// <summary>
    /// Database-level set-up: change tracking (7 days' retention, auto clean-up) and <c>ALLOW_SNAPSHOT_ISOLATION</c>, which
    /// the feed and the snapshot reads need. Needs ALTER on the database.
    /// </summary>
    public const string Database = """
        IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_databases WHERE database_id = DB_ID())
            ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 7 DAYS, AUTO_CLEANUP = ON);
        IF EXISTS (SELECT 1 FROM sys.databases WHERE database_id = DB_ID() AND snapshot_isolation_state = 0)
            ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON;
        """;

    /// <summary>The tables of checkpoints, feed failure counts, leases, backfill progress, exposure state, its history, the exposure ledger, subjects' last writes, the journal, dead letters and the reconciliation audit.</summary>
    public const string StateTables = $"""
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{CheckpointsTable}'))
            CREATE TABLE {CheckpointsTable} (
              name nvarchar(200) NOT NULL CONSTRAINT PK_rollout_checkpoints PRIMARY KEY,
              version bigint NOT NULL,
              updated_at datetimeoffset(3) NOT NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{FeedFailuresTable}'))
            CREATE TABLE {FeedFailuresTable} (
              name nvarchar(200) NOT NULL CONSTRAINT PK_rollout_feed_failures PRIMARY KEY,
              position bigint NOT NULL,
              attempts int NOT NULL,
              last_error nvarchar(2000) NOT NULL,
              last_failed datetimeoffset(3) NOT NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{LeasesTable}'))
            CREATE TABLE {LeasesTable} (
              name nvarchar(200) NOT NULL CONSTRAINT PK_rollout_leases PRIMARY KEY,
              owner nvarchar(200) NOT NULL,
              expires_at_ms bigint NOT NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{BackfillsTable}'))
            CREATE TABLE {BackfillsTable} (
              name nvarchar(200) NOT NULL CONSTRAINT PK_rollout_backfills PRIMARY KEY,
              start_version bigint NOT NULL,
              last_key nvarchar(max) NULL,
              copied bigint NOT NULL,
              completed bit NOT NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{StateTable}'))
            CREATE TABLE {StateTable} (
              feature nvarchar(63) NOT NULL CONSTRAINT PK_rollout_state PRIMARY KEY,
              phase nvarchar(63) NOT NULL,
              exposure_buckets int NOT NULL,
              reads nvarchar(16) NOT NULL,
              generation bigint NOT NULL,
              updated_at datetimeoffset(3) NOT NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{StateHistoryTable}'))
            CREATE TABLE {StateHistoryTable} (
              id bigint IDENTITY(1, 1) NOT NULL CONSTRAINT PK_rollout_state_history PRIMARY KEY,
              feature nvarchar(63) NOT NULL,
              phase nvarchar(63) NOT NULL,
              exposure_buckets int NOT NULL,
              reads nvarchar(16) NOT NULL,
              generation bigint NOT NULL,
              reason nvarchar(2000) NOT NULL,
              at datetimeoffset(3) NOT NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{ExposuresTable}'))
            CREATE TABLE {ExposuresTable} (
              id bigint IDENTITY(1, 1) NOT NULL CONSTRAINT PK_rollout_exposures PRIMARY KEY,
              feature nvarchar(63) NOT NULL,
              subject nvarchar(200) NOT NULL,
              phase nvarchar(63) NOT NULL,
              exposure_buckets int NOT NULL,
              at datetimeoffset(3) NOT NULL,
              INDEX IX_rollout_exposures_feature (feature, phase));
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{SubjectWritesTable}'))
            CREATE TABLE {SubjectWritesTable} (
              feature nvarchar(63) NOT NULL,
              subject nvarchar(200) NOT NULL,
              version bigint NULL,
              pending_after bigint NULL,
              CONSTRAINT PK_rollout_subject_writes PRIMARY KEY (feature, subject));
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{JournalTable}'))
            CREATE TABLE {JournalTable} (
              id bigint IDENTITY(1, 1) NOT NULL CONSTRAINT PK_rollout_journal PRIMARY KEY,
              feature nvarchar(63) NOT NULL,
              at datetimeoffset(7) NOT NULL,
              kind nvarchar(64) NOT NULL,
              phase nvarchar(63) NOT NULL,
              exposure decimal(9, 4) NOT NULL,
              detail nvarchar(max) NOT NULL,
              instance nvarchar(200) NOT NULL,
              seq bigint NOT NULL,
              entry_hash binary(32) NOT NULL,
              CONSTRAINT UX_rollout_journal_entry UNIQUE (feature, entry_hash));
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{DeadLettersTable}'))
            CREATE TABLE {DeadLettersTable} (
              id bigint IDENTITY(1, 1) NOT NULL CONSTRAINT PK_rollout_dead_letters PRIMARY KEY,
              feature nvarchar(63) NOT NULL,
              source_key nvarchar(max) NOT NULL,
              key_hash binary(32) NOT NULL,
              version bigint NOT NULL,
              errors nvarchar(max) NOT NULL,
              first_seen datetimeoffset(3) NOT NULL,
              attempts int NOT NULL,
              resolved_at datetimeoffset(3) NULL);
        IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'{DeadLettersTable}') AND name = N'UX_rollout_dead_letters_open')
            CREATE UNIQUE INDEX UX_rollout_dead_letters_open ON {DeadLettersTable} (feature, key_hash) WHERE resolved_at IS NULL;
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{ReconcileRunsTable}'))
            CREATE TABLE {ReconcileRunsTable} (
              id bigint IDENTITY(1, 1) NOT NULL CONSTRAINT PK_rollout_reconcile_runs PRIMARY KEY,
              feature nvarchar(63) NOT NULL,
              depth nvarchar(16) NOT NULL,
              mode nvarchar(16) NOT NULL,
              started datetimeoffset(3) NOT NULL,
              ended datetimeoffset(3) NULL,
              range_from nvarchar(max) NULL,
              range_to nvarchar(max) NULL,
              last_key nvarchar(max) NULL,
              status nvarchar(16) NOT NULL,
              compared bigint NOT NULL DEFAULT 0, missing bigint NOT NULL DEFAULT 0, extra bigint NOT NULL DEFAULT 0,
              divergent bigint NOT NULL DEFAULT 0, stale bigint NOT NULL DEFAULT 0, target_ahead bigint NOT NULL DEFAULT 0,
              untranslatable bigint NOT NULL DEFAULT 0, repaired bigint NOT NULL DEFAULT 0, flagged bigint NOT NULL DEFAULT 0,
              fetched bigint NOT NULL DEFAULT 0, target_rows bigint NOT NULL DEFAULT 0,
              INDEX IX_rollout_reconcile_runs_feature (feature, id));
        IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = OBJECT_ID(N'{ReconcileKeysTable}'))
            CREATE TABLE {ReconcileKeysTable} (
              run_id bigint NOT NULL CONSTRAINT FK_rollout_reconcile_keys_run REFERENCES {ReconcileRunsTable} (id),
              key_hash binary(32) NOT NULL,
              source_key nvarchar(max) NOT NULL,
              sort_key varbinary(max) NOT NULL,
              kind nvarchar(16) NOT NULL,
              action nvarchar(16) NOT NULL,
              source_version bigint NULL,
              target_version bigint NULL,
              before_hash nvarchar(100) NULL,
              after_hash nvarchar(100) NULL,
              at datetimeoffset(3) NOT NULL,
              detail nvarchar(max) NULL,
              first_seen datetimeoffset(3) NULL,
              CONSTRAINT PK_rollout_reconcile_keys PRIMARY KEY (run_id, key_hash));
        IF COL_LENGTH(N'{ReconcileKeysTable}', N'first_seen') IS NULL
            ALTER TABLE {ReconcileKeysTable} ADD first_seen datetimeoffset(3) NULL;
        """;

    /// <summary>
    /// Enables change tracking on the table named by the parameter <c>@table</c> (its quoted two-part name), without
    /// column tracking (the feed reads whole rows). Needs ALTER on the table; the table must have a primary key.
    /// </summary>
    /// <param name="table">The source table.</param>
    public static string SourceTable(SqlServerTableName table)
    {
        ArgumentNullException.ThrowIfNull(table);
        return $"""
            IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_tables WHERE object_id = OBJECT_ID(@table))
                ALTER TABLE {table.Quoted} ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
            """;
    }

    /// <summary>The whole set-up as one script to read or run by hand (sqlcmd, the portal's query editor).</summary>
    /// <param name="table">The source table.</param>
    public static string Script(SqlServerTableName table)
    {
        ArgumentNullException.ThrowIfNull(table);
        // The table name is a validated identifier; it is still escaped as a literal, as any value in a script must be.
        var literal = table.Quoted.Replace("'", "''", StringComparison.Ordinal);
        return $"""
            -- Rollout: SQL Server / Azure SQL set-up for {table} (idempotent).
            {Database}
            GO
            DECLARE @table nvarchar(300) = N'{literal}';
            {SourceTable(table)}
            GO
            {StateTables}
            GO

            """;
    }
}
