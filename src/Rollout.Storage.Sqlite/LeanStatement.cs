using Microsoft.Data.Sqlite;
using System.Runtime.InteropServices;
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

    /// <summary>The statement's native pointer, for <see cref="NativeColumns"/> (valid until <see cref="Dispose"/>).</summary>
    private readonly IntPtr _handle;

    private LeanStatement(sqlite3 db, sqlite3_stmt statement)
    {
        _db = db;
        _statement = statement;
        _handle = NativeColumns.Available ? statement.DangerousGetHandle() : IntPtr.Zero;
    }

    /// <summary>Prepares the command's text and binds its parameters; null when a parameter has a type not bound here (long, int, string, byte[], null are).</summary>
    public static LeanStatement? TryPrepare(SqliteCommand command) =>
        command.Connection?.Handle is { } db ? TryPrepare(db, command) : null;

    /// <summary>Prepares the command's text on <paramref name="db"/> (a connection of the engine's own, such as <see cref="SqliteDatabase.RentReader"/>) and binds its parameters; null as <see cref="TryPrepare(SqliteCommand)"/>.</summary>
    public static LeanStatement? TryPrepare(sqlite3 db, SqliteCommand command)
    {
        if (command.Parameters.Cast<SqliteParameter>().Any(p => p.Value is not (long or int or string or byte[] or DBNull or null)))
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

    public long GetInt64(int i) => _handle != IntPtr.Zero ? NativeColumns.Int64(_handle, i) : raw.sqlite3_column_int64(_statement, i);

    public string GetString(int i) => raw.sqlite3_column_text(_statement, i).utf8_to_string();

    /// <summary>The bytes of a BLOB value, valid until the next <see cref="Read"/>.</summary>
    public ReadOnlySpan<byte> GetBlobSpan(int i) => _handle != IntPtr.Zero ? NativeColumns.Blob(_handle, i) : raw.sqlite3_column_blob(_statement, i);

    /// <inheritdoc />
    public SourceValueKind KindOf(int ordinal) => (_handle != IntPtr.Zero ? NativeColumns.Type(_handle, ordinal) : raw.sqlite3_column_type(_statement, ordinal)) switch
    {
        raw.SQLITE_INTEGER => SourceValueKind.WholeNumber,
        // Text in place needs the direct accessors (SQLitePCLRaw gives text as a string or a terminated pointer only).
        raw.SQLITE_TEXT => _handle != IntPtr.Zero ? SourceValueKind.Text : SourceValueKind.Other,
        raw.SQLITE_NULL => SourceValueKind.Null,
        _ => SourceValueKind.Other,
    };

    /// <inheritdoc />
    /// <remarks>
    /// Through <c>sqlite3_column_text</c>, which gives UTF-8 whatever the file's encoding (a UTF-16 database's text is
    /// converted, as <see cref="GetString"/> has it converted); the blob accessor would give the stored bytes.
    /// </remarks>
    public ReadOnlySpan<byte> GetUtf8(int ordinal) => NativeColumns.Text(_handle, ordinal);

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _statement.IsClosed;

    public void Dispose() => _statement.Dispose();

    private static void Check(sqlite3 db, int rc)
    {
        if (rc != raw.SQLITE_OK && rc != raw.SQLITE_ROW && rc != raw.SQLITE_DONE)
        {
            throw new SqliteException(raw.sqlite3_errmsg(db).utf8_to_string(), rc, raw.sqlite3_extended_errcode(db));
        }
    }
}

/// <summary>
/// The engine's column accessors called directly with the statement's pointer: through SQLitePCLRaw each call also
/// reference-counts the statement's safe handle, and a deep reconciliation makes about twenty such calls per row (a
/// third of its cost in a profile). Used only when SQLitePCLRaw runs on the same bundled e_sqlite3 library (its name and
/// version agree); otherwise every call goes through SQLitePCLRaw as before. Only reads of the current row go this way:
/// stepping, binding and everything else stay with SQLitePCLRaw.
/// </summary>
internal static unsafe partial class NativeColumns
{
    private const string Library = "e_sqlite3";

    /// <summary>True when the direct calls reach the library SQLitePCLRaw uses.</summary>
    public static bool Available { get; } = Probe();

    public static int Type(IntPtr statement, int i) => sqlite3_column_type(statement, i);

    public static long Int64(IntPtr statement, int i) => sqlite3_column_int64(statement, i);

    /// <summary>A text value as UTF-8 (converted from the file's encoding if need be), valid until the statement moves on.</summary>
    /// <remarks>The pointer is read before the length (of the UTF-8 form that call made), as the engine's documentation asks.</remarks>
    public static ReadOnlySpan<byte> Text(IntPtr statement, int i) => Bytes(sqlite3_column_text(statement, i), statement, i);

    /// <summary>The value's bytes (text as stored, without conversion), valid until the statement moves on.</summary>
    public static ReadOnlySpan<byte> Blob(IntPtr statement, int i) => Bytes(sqlite3_column_blob(statement, i), statement, i);

    /// <summary>The column's bytes at <paramref name="pointer"/> (just read for it), with their length read after it.</summary>
    private static ReadOnlySpan<byte> Bytes(byte* pointer, IntPtr statement, int i) =>
        sqlite3_column_bytes(statement, i) is var length and > 0 && pointer != null ? new ReadOnlySpan<byte>(pointer, length) : [];

    /// <remarks>
    /// First read when a <see cref="LeanStatement"/> is prepared, on an open connection, so SQLitePCLRaw's provider is set.
    /// Anything that keeps the check from confirming the library (no provider, no such library or entry point) means no.
    /// </remarks>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "Any failure of the check only means the calls go through SQLitePCLRaw.")]
    private static bool Probe()
    {
        try
        {
            return raw.GetNativeLibraryName() == Library && sqlite3_libversion_number() == raw.sqlite3_libversion_number();
        }
        catch (Exception)
        {
            return false;
        }
    }

    [LibraryImport(Library)]
    private static partial int sqlite3_libversion_number();

    [LibraryImport(Library)]
    private static partial int sqlite3_column_type(IntPtr statement, int i);

    [LibraryImport(Library)]
    private static partial long sqlite3_column_int64(IntPtr statement, int i);

    [LibraryImport(Library)]
    private static partial byte* sqlite3_column_blob(IntPtr statement, int i);

    [LibraryImport(Library)]
    private static partial byte* sqlite3_column_text(IntPtr statement, int i);

    [LibraryImport(Library)]
    private static partial int sqlite3_column_bytes(IntPtr statement, int i);
}
