using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace Rollout.Core.Translation;

/// <summary>
/// The conversions of <see cref="Conversions"/> for values an <see cref="ISourceRecord"/> holds in place (integers and
/// UTF-8 text), for the shapes where the result is plainly the same as converting the value as an object: ASCII for the
/// case and date conversions, text that is valid UTF-8 without NUL. Each one declines (returns false) whatever it does not
/// take, and the value is then read as an object and converted by <see cref="Conversions"/>: a decline is never an error.
/// </summary>
internal static class RecordConversions
{
    /// <summary>The in-place conversion for a rule's <c>convert</c> (null for none named), or null when there is none.</summary>
    /// <param name="name">The conversion's name, or null for the natural one.</param>
    public static RecordConverter? For(string? name) => name switch
    {
        null => Natural,
        "string" => ToStringValue,
        "int64" => ToInt64,
        "centsToDecimal" => CentsToDecimal,
        "isoDateTime" => ToIsoDateTime,
        "lower" => (ISourceRecord r, int i, SourceValueKind k, Utf8Text t, out JsonScalar s) => MapAscii(r, i, k, t, lower: true, out s),
        "upper" => (ISourceRecord r, int i, SourceValueKind k, Utf8Text t, out JsonScalar s) => MapAscii(r, i, k, t, lower: false, out s),
        "trim" => Trim,
        _ => null,
    };

    private static bool Natural(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result)
    {
        if (kind == SourceValueKind.WholeNumber)
        {
            result = JsonScalar.Integer(record.GetInt64(ordinal));
            return true;
        }

        return Copy(record.GetUtf8(ordinal), text, out result);
    }

    private static bool ToStringValue(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result)
    {
        if (kind == SourceValueKind.WholeNumber)
        {
            // As long.ToString(null, InvariantCulture): digits with a leading '-'.
            var into = text.Reserve(20);
            record.GetInt64(ordinal).TryFormat(into, out var written, default, CultureInfo.InvariantCulture);
            result = text.Commit(written);
            return true;
        }

        return Copy(record.GetUtf8(ordinal), text, out result);
    }

    private static bool ToInt64(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result)
    {
        result = kind == SourceValueKind.WholeNumber ? JsonScalar.Integer(record.GetInt64(ordinal)) : default;
        return kind == SourceValueKind.WholeNumber;
    }

    private static bool CentsToDecimal(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result)
    {
        result = default;
        if (kind != SourceValueKind.WholeNumber)
        {
            return false;
        }

        // The text the writer gives the decimal cents / 100 with trailing zeros removed ("19.99", "19.9", "20", "-0.05"),
        // written from the integer: decimal division and normalisation cost several times as much.
        var cents = record.GetInt64(ordinal);
        var magnitude = cents < 0 ? (ulong)-(cents + 1) + 1 : (ulong)cents;
        var into = text.Reserve(24);
        var length = 0;
        if (cents < 0)
        {
            into[length++] = (byte)'-';
        }

        (magnitude / 100).TryFormat(into[length..], out var written, default, CultureInfo.InvariantCulture);
        length += written;
        if (magnitude % 100 is var fraction and not 0)
        {
            into[length++] = (byte)'.';
            into[length++] = (byte)('0' + (fraction / 10));
            if (fraction % 10 != 0)
            {
                into[length++] = (byte)('0' + (fraction % 10));
            }
        }

        result = text.CommitNumber(length);
        return true;
    }

    private static bool ToIsoDateTime(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result)
    {
        result = default;
        if (kind != SourceValueKind.Text)
        {
            return false;
        }

        // The common shapes only (Conversions.TryParseIsoUtc), which begin with a digit and end with a digit or Z: nothing to trim.
        var length = Conversions.TryWriteIsoUtc(record.GetUtf8(ordinal), text.Reserve(Conversions.InstantLength));
        result = length > 0 ? text.Commit(length) : default;
        return length > 0;
    }

    private static bool MapAscii(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, bool lower, out JsonScalar result)
    {
        result = default;
        if (kind != SourceValueKind.Text)
        {
            return false;
        }

        // ToLowerInvariant and ToUpperInvariant map ASCII letters as these do, and nothing else in ASCII.
        var bytes = record.GetUtf8(ordinal);
        if (!Ascii.IsValid(bytes) || bytes.Contains((byte)0))
        {
            return false;
        }

        var into = text.Reserve(bytes.Length);
        _ = lower ? Ascii.ToLower(bytes, into, out _) : Ascii.ToUpper(bytes, into, out _);
        result = text.Commit(bytes.Length);
        return true;
    }

    private static bool Trim(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result)
    {
        result = default;
        return kind == SourceValueKind.Text && record.GetUtf8(ordinal) is var bytes && Untrimmed(bytes) && Copy(bytes, text, out result);
    }

    /// <summary>
    /// True when string.Trim would leave the text as it is because it begins and ends with ASCII characters that are not
    /// white space (or is empty); false when it might trim (the ends are white space or outside ASCII).
    /// </summary>
    private static bool Untrimmed(ReadOnlySpan<byte> bytes) =>
        bytes.IsEmpty || (bytes[0] is > 0x20 and < 0x80 && bytes[^1] is > 0x20 and < 0x80);

    /// <summary>The text as it is, when it decodes to the same string losslessly (valid UTF-8, no NUL).</summary>
    private static bool Copy(ReadOnlySpan<byte> bytes, Utf8Text text, out JsonScalar result)
    {
        if (bytes.Contains((byte)0) || !Utf8.IsValid(bytes))
        {
            result = default;
            return false;
        }

        bytes.CopyTo(text.Reserve(bytes.Length));
        result = text.Commit(bytes.Length);
        return true;
    }
}

/// <summary>Converts one value of an <see cref="ISourceRecord"/> in place; false to have it read as an object instead.</summary>
internal delegate bool RecordConverter(ISourceRecord record, int ordinal, SourceValueKind kind, Utf8Text text, out JsonScalar result);

/// <summary>The UTF-8 text of one row's values, appended as they are converted and cleared for the next row.</summary>
internal sealed class Utf8Text
{
    private byte[] _bytes = new byte[256];
    private int _length;

    /// <summary>Everything written for this row.</summary>
    public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, _length);

    public void Clear() => _length = 0;

    /// <summary>Room for at least <paramref name="size"/> bytes after what is written.</summary>
    public Span<byte> Reserve(int size)
    {
        if (_bytes.Length - _length < size)
        {
            Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _length + size));
        }

        return _bytes.AsSpan(_length, size);
    }

    /// <summary>Takes <paramref name="count"/> bytes written into the last <see cref="Reserve"/> as one text value.</summary>
    public JsonScalar Commit(int count)
    {
        var value = JsonScalar.Utf8(_length, count);
        _length += count;
        return value;
    }

    /// <summary>Takes <paramref name="count"/> bytes written into the last <see cref="Reserve"/> as one number's JSON text.</summary>
    public JsonScalar CommitNumber(int count)
    {
        var value = JsonScalar.Utf8Number(_length, count);
        _length += count;
        return value;
    }
}
