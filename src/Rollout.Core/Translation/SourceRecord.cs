namespace Rollout.Core.Translation;

/// <summary>How a value of an <see cref="ISourceRecord"/> is stored, so that a translator can read it in place.</summary>
public enum SourceValueKind
{
    /// <summary>SQL NULL.</summary>
    Null,

    /// <summary>A 64-bit integer: <see cref="ISourceRecord.GetInt64"/>.</summary>
    WholeNumber,

    /// <summary>Text: <see cref="ISourceRecord.GetUtf8"/>.</summary>
    Text,

    /// <summary>Anything else: <see cref="ISourceRecord.GetValue"/> only.</summary>
    Other,
}

/// <summary>
/// A source row as a reader holds it, read value by value in place: a store that streams every row of a table to be hashed
/// (deep reconciliation) lets the translator read integers and UTF-8 text where they lie, instead of boxing each value
/// into a <see cref="SourceRow"/> first. Valid until the reader moves on.
/// </summary>
/// <remarks>
/// The translation must not depend on the form: <see cref="GetValue"/> returns exactly what the store's
/// <see cref="SourceRow"/> would hold (null for NULL); a value of kind <see cref="SourceValueKind.WholeNumber"/> is the
/// <see cref="long"/> that <see cref="GetValue"/> returns, and one of kind <see cref="SourceValueKind.Text"/> is the
/// string that <see cref="GetValue"/> returns, encoded as UTF-8 (the translator falls back to <see cref="GetValue"/>
/// for bytes that are not valid UTF-8 or hold a NUL).
/// </remarks>
public interface ISourceRecord
{
    /// <summary>How the value is stored.</summary>
    /// <param name="ordinal">Column ordinal in the reader's <see cref="SourceSchema"/>.</param>
    SourceValueKind KindOf(int ordinal);

    /// <summary>A value of kind <see cref="SourceValueKind.WholeNumber"/>.</summary>
    /// <param name="ordinal">Column ordinal.</param>
    long GetInt64(int ordinal);

    /// <summary>The UTF-8 bytes of a value of kind <see cref="SourceValueKind.Text"/>, valid until the reader moves on.</summary>
    /// <param name="ordinal">Column ordinal.</param>
    ReadOnlySpan<byte> GetUtf8(int ordinal);

    /// <summary>The value as the store's <see cref="SourceRow"/> holds it; null for NULL.</summary>
    /// <param name="ordinal">Column ordinal.</param>
    object? GetValue(int ordinal);
}
