using System.Data;
using Microsoft.Data.SqlClient;

namespace Rollout.Storage.SqlServer;

/// <summary>What a read-only look at the database found against what Rollout needs (<see cref="SqlServerSchema.Script"/>).</summary>
/// <param name="Database">Server and database (no credentials).</param>
/// <param name="Table">The source table.</param>
/// <param name="MissingTables">The <c>rollout_*</c> tables that do not exist (or that the caller cannot see).</param>
/// <param name="SourceTableExists">The source table exists.</param>
/// <param name="SourceTableTracked">Change tracking is on for the source table.</param>
/// <param name="SnapshotIsolation">The database allows snapshot isolation (the feed's and snapshot reads' transactions).</param>
/// <param name="MissingColumns">
/// Columns a later release added to a <c>rollout_*</c> table that exists (<c>table.column</c>): the set-up script of this
/// release has not been run again since the upgrade.
/// </param>
public sealed record SqlServerSchemaReport(string Database, SqlServerTableName Table, IReadOnlyList<string> MissingTables, bool SourceTableExists, bool SourceTableTracked, bool SnapshotIsolation, IReadOnlyList<string>? MissingColumns = null)
{
    /// <summary>True when nothing is missing.</summary>
    public bool IsReady => MissingTables.Count == 0 && (MissingColumns?.Count ?? 0) == 0 && SourceTableExists && SourceTableTracked && SnapshotIsolation;

    /// <summary>Every problem in one sentence, then how to fix it.</summary>
    /// <param name="fix">What to do, for the reader of the message.</param>
    public string Describe(string fix)
    {
        var problems = new List<string>();
        if (MissingTables.Count > 0)
        {
            problems.Add($"missing table(s) {string.Join(", ", MissingTables.Select(t => "dbo." + t))}");
        }

        if (MissingColumns is { Count: > 0 })
        {
            problems.Add($"missing column(s) {string.Join(", ", MissingColumns.Select(c => "dbo." + c))} (added by an upgrade)");
        }

        if (!SourceTableExists)
        {
            problems.Add($"the source table {Table} does not exist (or the app cannot see it)");
        }
        else if (!SourceTableTracked)
        {
            problems.Add($"change tracking is off for {Table}");
        }

        if (!SnapshotIsolation)
        {
            problems.Add("ALLOW_SNAPSHOT_ISOLATION is off");
        }

        return problems.Count == 0
            ? $"{Database} is set up for {Table}."
            : $"{Database} is not set up for Rollout: {string.Join("; ", problems)}. {fix}";
    }
}

/// <summary>
/// A read-only check that the database holds what the adapter needs: the <c>rollout_*</c> tables of
/// <see cref="SqlServerSchema.StateTables"/>, the source table with change tracking on, snapshot isolation. It creates
/// nothing (an application identity with only db_datareader/db_datawriter cannot): it only reads catalog views, which
/// show the tables the caller may read.
/// </summary>
public static class SqlServerSchemaCheck
{
    /// <summary>The tables <see cref="SqlServerSchema.StateTables"/> creates, unquoted, in the dbo schema.</summary>
    public static readonly IReadOnlyList<string> RequiredTables =
    [
        "rollout_checkpoints", "rollout_feed_failures", "rollout_leases", "rollout_backfills", "rollout_state", "rollout_state_history",
        "rollout_exposures", "rollout_subject_writes", "rollout_journal", "rollout_dead_letters", "rollout_reconcile_runs", "rollout_reconcile_keys",
    ];

    /// <summary>Columns added to existing tables by later releases (<c>table.column</c>), which the set-up script adds when missing.</summary>
    public static readonly IReadOnlyList<string> RequiredColumns = ["rollout_reconcile_keys.first_seen"];

    /// <summary>
    /// Four result sets: the existing rollout_* tables; the source table's state (0 missing, 1 untracked, 2 tracked);
    /// snapshot isolation (0/1); the existing <c>table.column</c> of <see cref="RequiredColumns"/>.
    /// </summary>
    internal static SqlStatement Statement(SqlServerTableName table)
    {
        ArgumentNullException.ThrowIfNull(table);
        return new("""
            SELECT t.name FROM sys.tables AS t WHERE t.schema_id = SCHEMA_ID(N'dbo') AND t.name LIKE N'rollout[_]%';
            SELECT CASE WHEN OBJECT_ID(@table) IS NULL THEN 0
                        WHEN EXISTS (SELECT 1 FROM sys.change_tracking_tables WHERE object_id = OBJECT_ID(@table)) THEN 2
                        ELSE 1 END;
            SELECT CASE WHEN snapshot_isolation_state = 1 THEN 1 ELSE 0 END FROM sys.databases WHERE database_id = DB_ID();
            SELECT t.name + N'.' + c.name FROM sys.columns AS c JOIN sys.tables AS t ON t.object_id = c.object_id
            WHERE t.schema_id = SCHEMA_ID(N'dbo') AND t.name LIKE N'rollout[_]%';
            """,
            [new SqlParameter("@table", SqlDbType.NVarChar, 300) { Value = table.Quoted }]);
    }

    /// <summary>Reads the catalog and reports what is missing (nothing is changed).</summary>
    /// <param name="connections">The database.</param>
    /// <param name="table">The source table of the spec.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<SqlServerSchemaReport> ReadAsync(SqlServerConnectionFactory connections, SqlServerTableName table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(table);
        var present = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var columns = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        int state;
        bool snapshot;
        var connection = await connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = connections.Command(connection, Statement(table));
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    present.Add(reader.GetString(0));
                }

                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                state = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? reader.GetInt32(0) : 0;
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                snapshot = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetInt32(0) == 1;
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    columns.Add(reader.GetString(0));
                }
            }
        }

        return Report(connections.Description, table, present, state, snapshot, columns);
    }

    /// <summary>The report from what the catalog showed.</summary>
    internal static SqlServerSchemaReport Report(string database, SqlServerTableName table, IReadOnlySet<string> present, int sourceState, bool snapshot, IReadOnlySet<string>? columns = null) =>
        new(database, table, RequiredTables.Where(t => !present.Contains(t)).ToArray(), sourceState > 0, sourceState == 2, snapshot,
            columns is null ? [] : RequiredColumns.Where(c => present.Contains(c[..c.IndexOf('.', StringComparison.Ordinal)]) && !columns.Contains(c)).ToArray());
}
