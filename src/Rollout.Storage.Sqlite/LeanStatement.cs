using Microsoft.Data.Sqlite;
using Rollout.Core.Translation;
using SQLitePCL;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// A statement run through the engine's own API on an open pooled connection, for the few reads that stream every row
/// of a table (snapshot reads, digest passes) and the one write repeated per row (the audit trail's keys): values come by
/// storage class, as <see cref="SqliteDataReader.GetValue"/> gives them, without its per-value overhead, and a repeated
/// write binds by index without the provider's per-execution binding by name. Parameters are bound from a
/// <see cref="SqliteCommand"/> built as usual.
/// </summary>
/// <remarks>
/// As an <see cref="ISourceRecord"/> it is the current row, read in place: its values are the ones <see cref="GetValue"/>
/// gives, integers as <see cref="SourceValueKind.WholeNumber"/>, text as <see cref="SourceValueKind.Text"/>.
/// </remarks>
internal sealed class LeanStatement : IDisposable, ISourceRecord
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;

    private LeanStatement(sqlite3 db, sqlite3_stmt statement)
    {
        _db = db;
        _statement = statement;
    }

    /// <summary>Prepares the command's text and binds its parameters; null when a parameter has a type not bound here (long, int, string, byte[], null are).</summary>
    public static LeanStatement? TryPrepare(SqliteCommand command)
    {
        if (command.Connection?.Handle is not { } db
            || command.Parameters.Cast<SqliteParameter>().Any(p => p.Value is not (long or int or string or byte[] or DBNull or null)))
        {
            return null;
        }

        Check(db, raw.sqlite3_prepare_v2(db, command.CommandText, out var statement));
        var lean = new LeanStatement(db, statement);
        try
        {
            foreach (SqliteParameter parameter in command.Parameters)
            {
                if (lean.ParameterIndex(parameter.ParameterName) is var index and > 0)
                {
                    lean.Bind(index, parameter.Value);
                }
            }

            return lean;
        }
        catch
        {
            lean.Dispose();
            throw;
        }
    }

    /// <summary>The index of a named parameter of the statement (0 when it has none of that name).</summary>
    public int ParameterIndex(string name) => raw.sqlite3_bind_parameter_index(_statement, name);

    /// <summary>Binds a value (long, int, string, byte[], or null for NULL) to a parameter by index.</summary>
    public void Bind(int index, object? value) => Check(_db, value switch
    {
        long l => raw.sqlite3_bind_int64(_statement, index, l),
        int i => raw.sqlite3_bind_int64(_statement, index, i),
        string text => raw.sqlite3_bind_text(_statement, index, text),
        byte[] bytes => raw.sqlite3_bind_blob(_statement, index, bytes),
        null or DBNull => raw.sqlite3_bind_null(_statement, index),
        _ => throw new ArgumentException($"Values of type {value.GetType().Name} are not bound here.", nameof(value)),
    });

    /// <summary>Runs a statement that returns no rows to its end and resets it for the next values (bindings are kept).</summary>
    public void ExecuteAndReset()
    {
        try
        {
            while (Read())
            {
            }
        }
        finally
        {
            raw.sqlite3_reset(_statement);
        }
    }

    /// <summary>Steps to the next row; false at the end.</summary>
    public bool Read()
    {
        var rc = raw.sqlite3_step(_statement);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }

        Check(_db, rc);
        return false;
    }

    /// <summary>The value as <see cref="SqliteDataReader.GetValue"/> gives it, with null for NULL.</summary>
    public object? GetValue(int i) => raw.sqlite3_column_type(_statement, i) switch
    {
        raw.SQLITE_INTEGER => raw.sqlite3_column_int64(_statement, i),
        raw.SQLITE_FLOAT => raw.sqlite3_column_double(_statement, i),
        raw.SQLITE_TEXT => raw.sqlite3_column_text(_statement, i).utf8_to_string(),
        raw.SQLITE_BLOB => raw.sqlite3_column_blob(_statement, i).ToArray(),
        _ => null,
    };

    public bool IsNull(int i) => raw.sqlite3_column_type(_statement, i) == raw.SQLITE_NULL;

    public long GetInt64(int i) => raw.sqlite3_column_int64(_statement, i);

    public string GetString(int i) => raw.sqlite3_column_text(_statement, i).utf8_to_string();

    /// <summary>The bytes of a BLOB value, valid until the next <see cref="Read"/>.</summary>
    public ReadOnlySpan<byte> GetBlobSpan(int i) => raw.sqlite3_column_blob(_statement, i);

    /// <inheritdoc />
    public SourceValueKind KindOf(int ordinal) => raw.sqlite3_column_type(_statement, ordinal) switch
    {
        raw.SQLITE_INTEGER => SourceValueKind.WholeNumber,
        raw.SQLITE_TEXT => SourceValueKind.Text,
        raw.SQLITE_NULL => SourceValueKind.Null,
        _ => SourceValueKind.Other,
    };

    /// <inheritdoc />
    /// <remarks>The text's bytes as stored (the database's encoding is UTF-8; the blob accessor does not convert them).</remarks>
    public ReadOnlySpan<byte> GetUtf8(int ordinal) => raw.sqlite3_column_blob(_statement, ordinal);

    public void Dispose() => _statement.Dispose();

    private static void Check(sqlite3 db, int rc)
    {
        if (rc != raw.SQLITE_OK && rc != raw.SQLITE_ROW && rc != raw.SQLITE_DONE)
        {
            throw new SqliteException(raw.sqlite3_errmsg(db).utf8_to_string(), rc, raw.sqlite3_extended_errcode(db));
        }
    }
}
