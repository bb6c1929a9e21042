using System.Globalization;
using System.Numerics;
using System.Text.Json;

namespace Rollout.Core.Translation;

/// <summary>
/// The conversions a mapping rule may name in <c>convert</c>. Each takes a non-null source value (as ADO.NET
/// returns it) and yields a JSON value, or a reason it cannot.
/// </summary>
public static class Conversions
{
    private static readonly Dictionary<string, (Converter Convert, string Description)> Registry = new(StringComparer.Ordinal)
    {
        ["string"] = (ToStringValue, "any value as text (dates as ISO-8601 UTC)"),
        ["int64"] = (ToInt64, "a whole number (from numbers or numeric text)"),
        ["decimal"] = (ToDecimal, "an exact decimal number"),
        ["double"] = (ToDouble, "a floating-point number"),
        ["boolean"] = (ToBoolean, "true/false (from booleans, 0/1, or \"true\"/\"false\")"),
        ["centsToDecimal"] = (CentsToDecimal, "integer cents to a decimal amount (1999 -> 19.99)"),
        ["isoDateTime"] = (ToIsoDateTime, "a date/time (value or text, UTC assumed) as ISO-8601 UTC text"),
        ["unixSecondsToIso"] = (UnixSecondsToIso, "seconds since 1970 as ISO-8601 UTC text"),
        ["unixMillisToIso"] = (UnixMillisToIso, "milliseconds since 1970 as ISO-8601 UTC text"),
        ["lower"] = ((object v, out JsonScalar r, out string? e) => MapText(v, s => s.ToLowerInvariant(), out r, out e), "text in lower case"),
        ["upper"] = ((object v, out JsonScalar r, out string? e) => MapText(v, s => s.ToUpperInvariant(), out r, out e), "text in upper case"),
        ["trim"] = ((object v, out JsonScalar r, out string? e) => MapText(v, s => s.Trim(), out r, out e), "text without leading or trailing white space"),
        ["guid"] = (ToGuid, "a GUID as lower-case text"),
        ["json"] = (ToJson, "a column holding JSON text, embedded as JSON"),
    };

    /// <summary>Names of every conversion, for validation messages and documentation.</summary>
    public static IReadOnlyCollection<string> Names => Registry.Keys;

    /// <summary>What a conversion does, or null for an unknown name.</summary>
    /// <param name="name">Conversion name.</param>
    public static string? Describe(string name) => Registry.TryGetValue(name, out var entry) ? entry.Description : null;

    internal static bool TryGet(string name, out Converter converter)
    {
        var found = Registry.TryGetValue(name, out var entry);
        converter = entry.Convert;
        return found;
    }

    /// <summary>The conversion used when a rule names none: the value as its own JSON type.</summary>
    internal static bool Natural(object value, out JsonScalar result, out string? error)
    {
        error = null;
        switch (value)
        {
            case string s: result = JsonScalar.Text(s); return true;
            case bool b: result = JsonScalar.Boolean(b); return true;
            case byte or sbyte or short or ushort or int or uint or long:
                result = JsonScalar.Integer(System.Convert.ToInt64(value, CultureInfo.InvariantCulture)); return true;
            case ulong ul when ul <= long.MaxValue: result = JsonScalar.Integer((long)ul); return true;
            case decimal m: result = JsonScalar.Exact(m); return true;
            case double d when double.IsFinite(d): result = JsonScalar.Float(d); return true;
            case float f when float.IsFinite(f): result = JsonScalar.Float(f); return true;
            case DateTime or DateTimeOffset: return ToIsoDateTime(value, out result, out error);
            case Guid g: result = JsonScalar.Text(g.ToString("D")); return true;
            case byte[] bytes: result = JsonScalar.Text(System.Convert.ToBase64String(bytes)); return true;
            default:
                result = default;
                error = $"a value of type {value.GetType().Name} has no JSON form; name a conversion";
                return false;
        }
    }

    private static bool ToStringValue(object value, out JsonScalar result, out string? error)
    {
        error = null;
        if (value is DateTime or DateTimeOffset)
        {
            return ToIsoDateTime(value, out result, out error);
        }

        result = JsonScalar.Text(value switch
        {
            byte[] bytes => System.Convert.ToBase64String(bytes),
            IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? string.Empty,
        });
        return true;
    }

    private static bool ToInt64(object value, out JsonScalar result, out string? error)
    {
        error = null;
        result = default;
        switch (value)
        {
            case string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed):
                result = JsonScalar.Integer(parsed); return true;
            case double d when double.IsFinite(d) && d == Math.Floor(d) && d is >= long.MinValue and <= long.MaxValue:
                result = JsonScalar.Integer((long)d); return true;
            case decimal m when m == decimal.Truncate(m) && m is >= long.MinValue and <= long.MaxValue:
                result = JsonScalar.Integer((long)m); return true;
            case byte or sbyte or short or ushort or int or uint or long:
                result = JsonScalar.Integer(System.Convert.ToInt64(value, CultureInfo.InvariantCulture)); return true;
            case bool b:
                result = JsonScalar.Integer(b ? 1 : 0); return true;
            default:
                error = $"'{Show(value)}' is not a whole number";
                return false;
        }
    }

    private static bool ToDecimal(object value, out JsonScalar result, out string? error)
    {
        error = null;
        result = default;
        if (TryDecimal(value, out var m))
        {
            result = JsonScalar.Exact(m);
            return true;
        }

        error = $"'{Show(value)}' is not a decimal number";
        return false;
    }

    private static bool ToDouble(object value, out JsonScalar result, out string? error)
    {
        double? number = value switch
        {
            string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
            double d => d,
            float or decimal or byte or sbyte or short or ushort or int or uint or long or ulong =>
                System.Convert.ToDouble(value, CultureInfo.InvariantCulture),
            _ => null,
        };
        var ok = number is { } n && double.IsFinite(n);
        result = ok ? JsonScalar.Float(number!.Value) : default;
        error = ok ? null : $"'{Show(value)}' is not a finite number";
        return ok;
    }

    private static bool ToBoolean(object value, out JsonScalar result, out string? error)
    {
        error = null;
        result = default;
        switch (value)
        {
            case bool b: result = JsonScalar.Boolean(b); return true;
            case byte or sbyte or short or ushort or int or uint or long or ulong:
                var n = System.Convert.ToDecimal(value, CultureInfo.InvariantCulture);
                if (n is 0 or 1)
                {
                    result = JsonScalar.Boolean(n == 1);
                    return true;
                }

                break;
            case string s when bool.TryParse(s.Trim(), out var parsed): result = JsonScalar.Boolean(parsed); return true;
            case string s when s.Trim() is "0" or "1": result = JsonScalar.Boolean(s.Trim() == "1"); return true;
        }

        error = $"'{Show(value)}' is not a boolean (expected true/false or 0/1)";
        return false;
    }

    private static bool CentsToDecimal(object value, out JsonScalar result, out string? error)
    {
        if (ToInt64(value, out var cents, out _))
        {
            error = null;
            result = JsonScalar.Exact(cents.Long / 100m);
            return true;
        }

        result = default;
        error = $"'{Show(value)}' is not a whole number of cents";
        return false;
    }

    private static bool ToIsoDateTime(object value, out JsonScalar result, out string? error)
    {
        error = null;
        result = default;
        DateTimeOffset instant;
        switch (value)
        {
            case DateTimeOffset dto: instant = dto; break;
            case DateTime dt: instant = new DateTimeOffset(DateTime.SpecifyKind(dt, dt.Kind == DateTimeKind.Unspecified ? DateTimeKind.Utc : dt.Kind)); break;
            case string s when TryParseIsoUtc(s.AsSpan().Trim(), out var iso):
                instant = iso; break;
            case string s when DateTimeOffset.TryParse(s.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed):
                instant = parsed; break;
            default:
                error = $"'{Show(value)}' is not a date/time";
                return false;
        }

        result = JsonScalar.Text(FormatInstant(instant));
        return true;
    }

    private static bool UnixSecondsToIso(object value, out JsonScalar result, out string? error) =>
        FromUnix(value, 1000, out result, out error);

    private static bool UnixMillisToIso(object value, out JsonScalar result, out string? error) =>
        FromUnix(value, 1, out result, out error);

    private static bool FromUnix(object value, long millisPerUnit, out JsonScalar result, out string? error)
    {
        result = default;
        if (ToInt64(value, out var n, out _))
        {
            try
            {
                var millis = checked(n.Long * millisPerUnit);
                result = JsonScalar.Text(FormatInstant(DateTimeOffset.FromUnixTimeMilliseconds(millis)));
                error = null;
                return true;
            }
            catch (Exception ex) when (ex is OverflowException or ArgumentOutOfRangeException)
            {
                // Falls through to the error below.
            }
        }

        error = $"'{Show(value)}' is not a Unix time in range";
        return false;
    }

    private static bool MapText(object value, Func<string, string> map, out JsonScalar result, out string? error)
    {
        if (value is string s)
        {
            error = null;
            result = JsonScalar.Text(map(s));
            return true;
        }

        result = default;
        error = $"expected text, found {value.GetType().Name}";
        return false;
    }

    private static bool ToGuid(object value, out JsonScalar result, out string? error)
    {
        Guid? guid = value switch
        {
            Guid g => g,
            string s when Guid.TryParse(s.Trim(), out var parsed) => parsed,
            byte[] { Length: 16 } bytes => new Guid(bytes),
            _ => null,
        };
        result = guid is { } found ? JsonScalar.Text(found.ToString("D")) : default;
        error = guid is null ? $"'{Show(value)}' is not a GUID" : null;
        return guid is not null;
    }

    private static bool ToJson(object value, out JsonScalar result, out string? error)
    {
        result = default;
        if (value is not string text)
        {
            error = $"expected JSON text, found {value.GetType().Name}";
            return false;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            result = JsonScalar.Raw(document.RootElement.Clone());
            error = null;
            return true;
        }
        catch (JsonException ex)
        {
            error = $"the column holds invalid JSON ({ex.Message})";
            return false;
        }
    }

    private static bool TryDecimal(object value, out decimal result)
    {
        switch (value)
        {
            case decimal m: result = m; return true;
            case string s: return decimal.TryParse(s.Trim(), NumberStyles.Number | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out result);
            case double d when double.IsFinite(d) && Math.Abs(d) < 7.9e28: result = (decimal)d; return true;
            case float f when float.IsFinite(f) && Math.Abs(f) < 7.9e28f: result = (decimal)f; return true;
            case byte or sbyte or short or ushort or int or uint or long or ulong:
                result = System.Convert.ToDecimal(value, CultureInfo.InvariantCulture); return true;
            default: result = 0; return false;
        }
    }

    /// <summary>
    /// The instant as <c>yyyy-MM-ddTHH:mm:ss.FFFFFFFZ</c> in UTC (the fraction without trailing zeros, and with its point
    /// left out when zero), written field by field into a stack buffer: a deep reconciliation formats one per row and date
    /// column, and the custom format string costs several times as much. Equal to the format string's output (a test checks).
    /// </summary>
    internal static string FormatInstant(DateTimeOffset instant)
    {
        Span<char> text = stackalloc char[InstantLength];
        return new string(text[..FormatInstant(instant, text)]);
    }

    /// <summary>The most characters <see cref="FormatInstant(DateTimeOffset, Span{char})"/> writes.</summary>
    internal const int InstantLength = 28;

    /// <summary>Writes <see cref="FormatInstant(DateTimeOffset)"/>'s text into <paramref name="text"/> (at least <see cref="InstantLength"/> long); its length.</summary>
    internal static int FormatInstant(DateTimeOffset instant, Span<char> text)
    {
        var utc = instant.UtcDateTime;
        Digits(text[..4], utc.Year);
        text[4] = '-';
        Digits(text.Slice(5, 2), utc.Month);
        text[7] = '-';
        Digits(text.Slice(8, 2), utc.Day);
        text[10] = 'T';
        Digits(text.Slice(11, 2), utc.Hour);
        text[13] = ':';
        Digits(text.Slice(14, 2), utc.Minute);
        text[16] = ':';
        Digits(text.Slice(17, 2), utc.Second);
        var length = 19;
        var fraction = (int)(utc.Ticks % TimeSpan.TicksPerSecond);
        if (fraction != 0)
        {
            text[19] = '.';
            Digits(text.Slice(20, 7), fraction);
            length = 27;
            while (text[length - 1] == '0')
            {
                length--;
            }
        }

        text[length++] = 'Z';
        return length;

        // Zero-padded to the span's width (4, 7 or 2 digits).
        static void Digits(Span<char> into, int value)
        {
            for (var i = into.Length - 1; i >= 0; i--)
            {
                into[i] = (char)('0' + (value % 10));
                value /= 10;
            }
        }
    }

    /// <summary>
    /// The common shapes of a date/time in text, parsed directly: <c>yyyy-MM-dd HH:mm:ss</c> or <c>yyyy-MM-ddTHH:mm:ss</c>,
    /// with an optional fraction of 1 to 7 digits and an optional <c>Z</c>, as UTC. Anything else (offsets, other
    /// layouts, out-of-range fields) is left to <see cref="DateTimeOffset.TryParse(string?, IFormatProvider?, DateTimeStyles, out DateTimeOffset)"/>,
    /// which gives the same instant for these shapes (a test checks): this only spares its cost per row.
    /// </summary>
    internal static bool TryParseIsoUtc(ReadOnlySpan<char> s, out DateTimeOffset instant)
    {
        instant = default;
        if (!TryIsoFields(s, out var f))
        {
            return false;
        }

        var ticks = (long)f.Fraction;
        for (var i = f.FractionDigits; i < 7; i++)
        {
            ticks *= 10;
        }

        instant = new DateTimeOffset(new DateTime(f.Year, f.Month, f.Day, f.Hour, f.Minute, f.Second, DateTimeKind.Utc).AddTicks(ticks));
        return true;
    }

    /// <summary>
    /// For UTF-8 text of the shapes <see cref="TryParseIsoUtc"/> reads: the text <see cref="FormatInstant(DateTimeOffset)"/>
    /// gives for its instant, written without building it (the fields are already in canonical order: the separator becomes
    /// <c>T</c>, the fraction loses its trailing zeros, <c>Z</c> is added); 0 for any other text.
    /// </summary>
    /// <param name="s">The text.</param>
    /// <param name="into">At least <see cref="InstantLength"/> bytes.</param>
    internal static int TryWriteIsoUtc(ReadOnlySpan<byte> s, Span<byte> into)
    {
        if (!TryIsoFields(s, out var f))
        {
            return 0;
        }

        s[..10].CopyTo(into);
        into[10] = (byte)'T';
        s.Slice(11, 8).CopyTo(into[11..]);
        var length = 19;
        var digits = f.FractionDigits;
        while (digits > 0 && s[19 + digits] == '0')
        {
            digits--;
        }

        if (digits > 0)
        {
            into[length++] = (byte)'.';
            s.Slice(20, digits).CopyTo(into[length..]);
            length += digits;
        }

        into[length++] = (byte)'Z';
        return length;
    }

    /// <summary>The fields of <see cref="TryParseIsoUtc"/>'s shapes, in characters or UTF-8 bytes; false for any other text.</summary>
    private static bool TryIsoFields<T>(ReadOnlySpan<T> s, out IsoFields fields)
        where T : unmanaged, IBinaryInteger<T>
    {
        fields = default;
        if (s.Length < 19 || !Is(s[4], '-') || !Is(s[7], '-') || !(Is(s[10], ' ') || Is(s[10], 'T')) || !Is(s[13], ':') || !Is(s[16], ':')
            || !Number(s[..4], out var year) || !Number(s.Slice(5, 2), out var month) || !Number(s.Slice(8, 2), out var day)
            || !Number(s.Slice(11, 2), out var hour) || !Number(s.Slice(14, 2), out var minute) || !Number(s.Slice(17, 2), out var second)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        var rest = s[19..];
        int fraction = 0, n = 0;
        if (rest.Length > 0 && Is(rest[0], '.'))
        {
            while (1 + n < rest.Length && Digit(rest[1 + n]) >= 0)
            {
                n++;
            }

            if (n is < 1 or > 7)
            {
                return false;
            }

            Number(rest.Slice(1, n), out fraction);

            rest = rest[(1 + n)..];
        }

        if (rest.Length > 1 || (rest.Length == 1 && !Is(rest[0], 'Z')))
        {
            return false;
        }

        fields = new IsoFields(year, month, day, hour, minute, second, fraction, n);
        return true;

        static bool Is(T c, char expected) => int.CreateTruncating(c) == expected;

        // An ASCII digit's value, else -1.
        static int Digit(T c) => int.CreateTruncating(c) - '0' is var d and >= 0 and <= 9 ? d : -1;

        // ASCII digits only: no sign, no white space (the fields are 1 to 7 characters, so never past int's range).
        static bool Number(ReadOnlySpan<T> digits, out int value)
        {
            value = 0;
            foreach (var c in digits)
            {
                var digit = Digit(c);
                if (digit < 0)
                {
                    return false;
                }

                value = (value * 10) + digit;
            }

            return true;
        }
    }

    private readonly record struct IsoFields(int Year, int Month, int Day, int Hour, int Minute, int Second, int Fraction, int FractionDigits);

    private static string Show(object value)
    {
        var text = value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value.ToString() ?? string.Empty;
        return text.Length > 64 ? text[..64] + "…" : text;
    }
}

/// <summary>Converts one non-null source value.</summary>
internal delegate bool Converter(object value, out JsonScalar result, out string? error);

/// <summary>A JSON value produced by a conversion.</summary>
internal readonly struct JsonScalar
{
    private JsonScalar(JsonScalarKind kind, string? text = null, long integer = 0, decimal exact = 0, double number = 0, JsonElement raw = default, int length = 0)
    {
        Kind = kind;
        Length = length;
        String = text;
        Long = integer;
        Decimal = exact;
        Double = number;
        RawElement = raw;
    }

    public JsonScalarKind Kind { get; }

    public string? String { get; }

    public long Long { get; }

    public decimal Decimal { get; }

    public double Double { get; }

    public JsonElement RawElement { get; }

    /// <summary>The byte count of a <see cref="JsonScalarKind.Utf8"/> value (its offset is <see cref="Long"/>).</summary>
    public int Length { get; }

    public static JsonScalar Text(string value) => new(JsonScalarKind.String, text: value);

    public static JsonScalar Integer(long value) => new(JsonScalarKind.Long, integer: value);

    public static JsonScalar Exact(decimal value) => new(JsonScalarKind.Decimal, exact: value);

    public static JsonScalar Float(double value) => new(JsonScalarKind.Double, number: value);

    public static JsonScalar Boolean(bool value) => new(value ? JsonScalarKind.True : JsonScalarKind.False);

    public static JsonScalar Raw(JsonElement value) => new(JsonScalarKind.Raw, raw: value);

    /// <summary>Text held as UTF-8 in a row's <see cref="Utf8Text"/>, at <paramref name="offset"/> for <paramref name="length"/> bytes.</summary>
    public static JsonScalar Utf8(int offset, int length) => new(JsonScalarKind.Utf8, integer: offset, length: length);

    /// <summary>A number's canonical JSON text held in a row's <see cref="Utf8Text"/> (as <see cref="Utf8"/>).</summary>
    public static JsonScalar Utf8Number(int offset, int length) => new(JsonScalarKind.Utf8Number, integer: offset, length: length);

    /// <summary>The value as plain text, for ids, partition keys and templates.</summary>
    /// <param name="text">The row's UTF-8 text (for a <see cref="JsonScalarKind.Utf8"/> value).</param>
    public string AsText(ReadOnlySpan<byte> text) => Kind switch
    {
        JsonScalarKind.String => String!,
        JsonScalarKind.Utf8 or JsonScalarKind.Utf8Number => System.Text.Encoding.UTF8.GetString(text.Slice((int)Long, Length)),
        JsonScalarKind.Long => Long.ToString(CultureInfo.InvariantCulture),
        JsonScalarKind.Decimal => Decimal.ToString(CultureInfo.InvariantCulture),
        JsonScalarKind.Double => Double.ToString("R", CultureInfo.InvariantCulture),
        JsonScalarKind.True => "true",
        JsonScalarKind.False => "false",
        _ => RawElement.GetRawText(),
    };

    /// <summary>Writes the value canonically.</summary>
    /// <param name="writer">Destination.</param>
    /// <param name="text">The row's UTF-8 text (for a <see cref="JsonScalarKind.Utf8"/> value).</param>
    public void WriteTo(Utf8JsonWriter writer, ReadOnlySpan<byte> text)
    {
        switch (Kind)
        {
            case JsonScalarKind.String: writer.WriteStringValue(String); break;
            // The same escaping as for the string it decodes to (the writer's encoder judges code points, not their form).
            case JsonScalarKind.Utf8: writer.WriteStringValue(text.Slice((int)Long, Length)); break;
            case JsonScalarKind.Utf8Number: writer.WriteRawValue(text.Slice((int)Long, Length), skipInputValidation: true); break;
            case JsonScalarKind.Long: writer.WriteNumberValue(Long); break;
            // Normalised so that 19.9 and 19.90 hash the same.
            case JsonScalarKind.Decimal: writer.WriteNumberValue(Decimal / 1.000000000000000000000000000000000m); break;
            case JsonScalarKind.Double: writer.WriteNumberValue(Double); break;
            case JsonScalarKind.True: writer.WriteBooleanValue(true); break;
            case JsonScalarKind.False: writer.WriteBooleanValue(false); break;
            default: CanonicalJson.Write(RawElement, writer); break;
        }
    }
}

internal enum JsonScalarKind
{
    String,
    Long,
    Decimal,
    Double,
    True,
    False,
    Raw,
    Utf8,
    Utf8Number,
}
