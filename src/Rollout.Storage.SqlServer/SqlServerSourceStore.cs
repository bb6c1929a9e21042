using System.Data;
using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer;

/// <summary>
/// The legacy table in Azure SQL / SQL Server, read through change tracking: the change feed is
/// <c>CHANGETABLE(CHANGES …)</c> joined to the table (one net change per key since the reader's version, in version order),
/// and snapshot reads carry each row's version from <c>CHANGETABLE(VERSION …)</c> (0 when the row has not changed since
/// tracking began). The semantics are those of the embedded <c>SqliteSourceStore</c>, with two differences that SQL Server
/// defines: every row changed by one transaction shares that transaction's version (a batch therefore never ends inside
/// a version, see <see cref="ReadChangesAsync"/>), and a row deleted and inserted again after the reader's version is an
/// update, not an insert. Both are upserts to the target, so the pipeline does the same.
/// </summary>
/// <remarks>
/// Feed reads and snapshot reads run under SNAPSHOT isolation, so the minimum-valid-version check, the change table and
/// the rows joined to it are one consistent view; the database needs <c>ALLOW_SNAPSHOT_ISOLATION ON</c>
/// (<see cref="SqlServerSchema.Database"/> turns it on). The login needs SELECT and VIEW CHANGE TRACKING on the table.
/// </remarks>
public sealed class SqlServerSourceStore : IChangeFeed, IReconcileSource
{
    private readonly SqlServerConnectionFactory _connections;
    private readonly string[] _keyNames;
    private readonly string[] _columnNames;
    private SourceTableSql? _sql;
    private SourceSchema? _schema;

    /// <summary>Creates the store for one table.</summary>
    /// <param name="connections">The source database.</param>
    /// <param name="table">Table name from the spec (<c>schema.table</c> or <c>table</c> in <c>dbo</c>).</param>
    /// <param name="keyColumns">Primary key columns in key order.</param>
    /// <param name="columns">Columns to read (the mapping's source columns); key columns are added.</param>
    /// <exception cref="ArgumentException">A name is not a plain SQL identifier.</exception>
    public SqlServerSourceStore(SqlServerConnectionFactory connections, string table, IReadOnlyList<string> keyColumns, IReadOnlyList<string> columns)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(keyColumns);
        ArgumentNullException.ThrowIfNull(columns);
        if (keyColumns.Count == 0)
        {
            throw new ArgumentException("A source table needs at least one key column.", nameof(keyColumns));
        }

        _connections = connections;
        Table = SqlServerTableName.Parse(table);
        _keyNames = keyColumns.Select(k => Identifiers.IsSqlIdentifier(k) ? k : throw new ArgumentException($"'{k}' is not a plain column name.", nameof(keyColumns))).ToArray();
        _columnNames = columns.Select(c => Identifiers.IsSqlIdentifier(c) ? c : throw new ArgumentException($"'{c}' is not a plain column name.", nameof(columns))).ToArray();
    }

    /// <summary>Creates the store a spec describes.</summary>
    /// <param name="connections">The source database.</param>
    /// <param name="spec">Validated spec.</param>
    /// <param name="translator">The spec's compiled mapping (its source columns are read).</param>
    public static SqlServerSourceStore For(SqlServerConnectionFactory connections, RolloutSpec spec, DocumentTranslator translator)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(translator);
        return new SqlServerSourceStore(connections, spec.Source.Table, spec.Source.Key, translator.SourceColumns);
    }

    /// <summary>The source table.</summary>
    public SqlServerTableName Table { get; }

    /// <summary>
    /// Turns on change tracking (database and table) and snapshot isolation if they are off, then checks the table against
    /// the spec. Idempotent. Needs ALTER on the database and the table; where a DBA runs <see cref="SqlServerSchema.Script"/>
    /// instead, call <see cref="VerifyAsync"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            // ALTER DATABASE cannot run in a transaction: each guarded statement runs on its own.
            await using (var command = _connections.Command(connection, SqlServerSchema.Database))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            // The table and the spec agree (columns, primary key, key types) before tracking is turned on for it.
            Describe(Table, _keyNames, _columnNames, await ColumnsAsync(connection, cancellationToken).ConfigureAwait(false));
            await using (var command = _connections.Command(connection, SqlServerSchema.SourceTable(Table)))
            {
                command.Parameters.Add(TableParameter());
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        await VerifyAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Checks the table against the spec (it exists, has every key and mapped column, its primary key is the spec's key,
    /// key columns are integer or text) and that change tracking is on for it; an <see cref="InvalidOperationException"/> says what is wrong.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task VerifyAsync(CancellationToken cancellationToken = default)
    {
        _sql = null;
        await SqlAsync(cancellationToken).ConfigureAwait(false);
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, _sql!.MinValidVersionStatement());
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not long)
            {
                throw NotTracked();
            }
        }
    }

    /// <inheritdoc />
    public async Task<long> GetCurrentVersionAsync(CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, SourceTableSql.CurrentVersion);
            return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// Net changes after <paramref name="afterVersion"/> in version order: at most <paramref name="maxChanges"/>, except that
    /// the rest of the last version's rows are included (one transaction's rows share a version, and the caller's
    /// checkpoint is a version: ending a batch inside a version would skip the rest of it).
    /// </summary>
    /// <param name="afterVersion">Last version already applied.</param>
    /// <param name="maxChanges">Batch size.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="ChangeTrackingVersionTooOldException"><paramref name="afterVersion"/> is below the table's minimum valid version: re-backfill.</exception>
    public async Task<IReadOnlyList<SourceChange>> ReadChangesAsync(long afterVersion, int maxChanges, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChanges);
        var sql = await SqlAsync(cancellationToken).ConfigureAwait(false);
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.Snapshot, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using (var check = _connections.Command(connection, sql.MinValidVersionStatement(), transaction))
                {
                    var min = await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
                    if (min is null)
                    {
                        throw NotTracked();
                    }

                    if (afterVersion < min)
                    {
                        throw new ChangeTrackingVersionTooOldException(Table.Quoted, afterVersion, min.Value);
                    }
                }

                var changes = new List<SourceChange>(Math.Min(maxChanges, 65_536));
                await using (var command = _connections.Command(connection, sql.ChangesStatement(afterVersion, maxChanges), transaction))
                {
                    var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        var k = sql.Keys.Count;
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var key = ReadKey(reader, 0, k);
                            var version = reader.GetInt64(k);
                            var operation = reader.GetString(k + 1);
                            var present = reader.GetInt32(k + 2) != 0;
                            changes.Add(ToChange(key, version, operation, present, present ? ReadRow(reader, k + 3) : null));
                        }
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return changes;
            }
        }
    }

    /// <summary>Maps a CHANGETABLE row: a deleted operation, or a row that no longer exists, is a delete; I and U relative to the reader's version.</summary>
    internal static SourceChange ToChange(SourceKey key, long version, string operation, bool present, SourceRow? row) =>
        operation switch
        {
            _ when operation == "D" || !present => new SourceChange(key, version, ChangeOperation.Delete, null),
            "I" => new SourceChange(key, version, ChangeOperation.Insert, row),
            "U" => new SourceChange(key, version, ChangeOperation.Update, row),
            _ => throw new InvalidOperationException($"Unknown SYS_CHANGE_OPERATION '{operation}'."),
        };

    /// <inheritdoc />
    public async Task<long> CountAsync(CancellationToken cancellationToken)
    {
        var sql = await SqlAsync(cancellationToken).ConfigureAwait(false);
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = _connections.Command(connection, sql.Count);
            return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<SnapshotRow>> ReadBatchAsync(SourceKey? afterKey, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var sql = await SqlAsync(cancellationToken).ConfigureAwait(false);
        return await SnapshotAsync(sql.SnapshotBatchStatement(afterKey, batchSize), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<SnapshotRow?> GetAsync(SourceKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        var sql = await SqlAsync(cancellationToken).ConfigureAwait(false);
        // The column's collation may match another spelling of the key ("A" for "a"): only the exact key counts.
        var rows = await SnapshotAsync(sql.GetStatement(key), cancellationToken).ConfigureAwait(false);
        return rows.FirstOrDefault(r => SortKey.Compare(r.Key.Sort, key.Sort) == 0);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<SourceEntry>> ReadVersionsAsync(SourceKey? after, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        var sql = await SqlAsync(cancellationToken).ConfigureAwait(false);
        var entries = new List<SourceEntry>(Math.Min(max, 65_536));
        await InSnapshotAsync(sql.VersionsStatement(after, max), async reader =>
        {
            var k = sql.Keys.Count;
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                entries.Add(new SourceEntry(ReadKey(reader, 0, k), reader.GetInt64(k)));
            }
        }, cancellationToken).ConfigureAwait(false);
        return entries;
    }

    /// <summary>
    /// None: SQL Server's change tracking keeps no per-bucket sums, and maintaining them would take triggers on the
    /// application's table. Quick reconciliation computes segment digests instead (<see cref="QuickDigestAsync"/>).
    /// </summary>
    /// <param name="maxBuckets">Unused.</param>
    /// <param name="cancellationToken">Unused.</param>
    public Task<QuickBuckets?> QuickBucketsAsync(int maxBuckets, CancellationToken cancellationToken) => Task.FromResult<QuickBuckets?>(null);

    /// <inheritdoc />
    public async Task<SegmentDigest?> QuickDigestAsync(SourceKey? after, int size, SourceKey? to, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        var sql = await SqlAsync(cancellationToken).ConfigureAwait(false);
        if (sql.Keys is not [{ Kind: KeyKind.Integer }])
        {
            return null;
        }

        long? afterValue = after is not null && after.TryGetSingleInteger(out var a) ? a : null;
        long? toValue = to is not null && to.TryGetSingleInteger(out var t) ? t : null;
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.Snapshot, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using var command = _connections.Command(connection, sql.QuickDigestStatement(afterValue, size, toValue), transaction);

                long count, sum;
                long? last;
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    count = reader.GetInt64(0);
                    sum = reader.GetInt64(1);
                    last = reader.IsDBNull(2) ? null : reader.GetInt64(2);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                // Fewer keys than asked for, or the range's upper bound reached: no key of the range follows.
                var isFinal = count < size || (toValue is not null && last == toValue);
                return new SegmentDigest(last is { } l ? SourceKey.From([l]) : null, isFinal, count, sum);
            }
        }
    }

    private async Task<IReadOnlyList<SnapshotRow>> SnapshotAsync(SqlStatement statement, CancellationToken cancellationToken)
    {
        var schema = _schema!;
        var rows = new List<SnapshotRow>();
        var k = _sql!.Keys.Count;
        var width = schema.Columns.Count;
        await InSnapshotAsync(statement, async reader =>
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var row = ReadRow(reader, 0);
                // The key columns come first: build the key from the values already read.
                var sourceKey = SourceKey.From(row.Values.Take(k).ToArray());
                rows.Add(new SnapshotRow(sourceKey, reader.GetInt64(width), row));
            }
        }, cancellationToken).ConfigureAwait(false);
        return rows;
    }

    private async Task InSnapshotAsync(SqlStatement statement, Func<SqlDataReader, Task> read, CancellationToken cancellationToken)
    {
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = (SqlTransaction)await connection.BeginTransactionAsync(IsolationLevel.Snapshot, cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using (var command = _connections.Command(connection, statement, transaction))
                {

                    var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        await read(reader).ConfigureAwait(false);
                    }
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask<SourceTableSql> SqlAsync(CancellationToken cancellationToken)
    {
        if (_sql is { } ready)
        {
            return ready;
        }

        // Two first calls racing both read the columns and build equal statements: harmless, and no lock to dispose.
        var connection = await _connections.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var columns = await ColumnsAsync(connection, cancellationToken).ConfigureAwait(false);
            var sql = Describe(Table, _keyNames, _columnNames, columns);
            _schema = new SourceSchema(sql.Columns);
            _sql = sql;
            return sql;
        }
    }

    /// <summary>Checks the spec's key and columns against the table's columns and builds its statements.</summary>
    /// <param name="table">Table.</param>
    /// <param name="keys">Spec's key columns in key order.</param>
    /// <param name="columns">Spec's mapped columns.</param>
    /// <param name="existing">The table's columns: name to (system type name, part of the primary key).</param>
    internal static SourceTableSql Describe(SqlServerTableName table, IReadOnlyList<string> keys, IReadOnlyList<string> columns,
        IReadOnlyDictionary<string, (string Type, bool InPrimaryKey)> existing)
    {
        if (existing.Count == 0)
        {
            throw new InvalidOperationException($"The source table {table.Quoted} does not exist, or this login cannot see it.");
        }

        var missing = keys.Concat(columns).Where(c => !existing.ContainsKey(c)).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidOperationException($"The source table {table.Quoted} has no column(s) {string.Join(", ", missing)} that the spec's key or mapping reads. Fix the spec's mapping or the table.");
        }

        var primaryKey = existing.Where(c => c.Value.InPrimaryKey).Select(c => c.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (!primaryKey.SetEquals(keys))
        {
            throw new InvalidOperationException(
                $"The spec's key ({string.Join(", ", keys)}) is not the primary key of {table.Quoted} ({(primaryKey.Count == 0 ? "none" : string.Join(", ", primaryKey))}); change tracking identifies rows by the primary key.");
        }

        var keyColumns = keys.Select(k => new KeyColumn(k, existing[k].Type.ToUpperInvariant() switch
        {
            "TINYINT" or "SMALLINT" or "INT" or "BIGINT" => KeyKind.Integer,
            "CHAR" or "VARCHAR" or "NCHAR" or "NVARCHAR" => KeyKind.Text,
            _ => throw new InvalidOperationException($"Key column {k} of {table.Quoted} has type {existing[k].Type}; key columns must be integers or text (the order both stores share)."),
        })).ToArray();
        return new SourceTableSql(table, keyColumns, columns);
    }

    private async Task<Dictionary<string, (string Type, bool InPrimaryKey)>> ColumnsAsync(SqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = _connections.Command(connection, SourceTableSql.TableColumnsStatement(Table));
        var columns = new Dictionary<string, (string, bool)>(StringComparer.OrdinalIgnoreCase);
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                columns[reader.GetString(0)] = (reader.GetString(1), reader.GetInt32(2) != 0);
            }
        }

        return columns;
    }

    private SqlParameter TableParameter() => new("@table", SqlDbType.NVarChar, 300) { Value = Table.Quoted };

    private InvalidOperationException NotTracked() =>
        new($"Change tracking is not enabled on {Table.Quoted}, or this login lacks VIEW CHANGE TRACKING on it. Run the set-up script (SqlServerSchema.Script) or InitializeAsync.");

    private static SourceKey ReadKey(SqlDataReader reader, int offset, int count)
    {
        var values = new object?[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = reader.GetValue(offset + i);
        }

        return SourceKey.From(values);
    }

    private SourceRow ReadRow(SqlDataReader reader, int offset)
    {
        var schema = _schema!;
        var values = new object?[schema.Columns.Count];
        for (var i = 0; i < values.Length; i++)
        {
            var value = reader.GetValue(offset + i);
            values[i] = value is DBNull ? null : value;
        }

        return new SourceRow(schema, values);
    }
}
