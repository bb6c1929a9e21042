using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Tests.Translation;

/// <summary>
/// A row read in place (<see cref="ISourceRecord"/>: integers and UTF-8 text where a reader holds them) hashes exactly as the
/// same values as a <see cref="SourceRow"/> do, and fails with the same errors: deep reconciliation hashes the first way and
/// the dual writes translate the second, so any difference would be reported as drift.
/// </summary>
public sealed class RecordTranslationTests
{
    private static readonly RolloutSpec Spec = RolloutSpecLoader.Load("""
        {
          "feature": "records",
          "source": { "table": "T", "key": ["Id"] },
          "target": { "container": "c", "partitionKey": "/pk" },
          "mapping": {
            "id": { "from": "Id", "convert": "string" },
            "pk": "Pk",
            "natural": "A",
            "text": { "from": "B", "convert": "string" },
            "whole": { "from": "C", "convert": "int64" },
            "amount": { "from": "D", "convert": "centsToDecimal" },
            "at": { "from": "E", "convert": "isoDateTime" },
            "low": { "from": "F", "convert": "lower" },
            "up": { "from": "G", "convert": "upper" },
            "trimmed": { "from": "H", "convert": "trim" },
            "nested.again": { "from": "A", "convert": "upper" },
            "nested.date": { "from": "B", "convert": "isoDateTime" },
            "label": { "template": "{Pk}-{C}" },
            "fixed": { "const": 3 }
          },
          "phases": [ { "name": "all", "exposure": 100, "bake": "PT1M" } ]
        }
        """).Spec!;

    private static readonly DocumentTranslator Translator = DocumentTranslator.Compile(Spec);

    /// <summary>Only conversions that read integers and text in place (no template, no date from a number).</summary>
    private static readonly DocumentTranslator Plain = DocumentTranslator.Compile(Spec with
    {
        Mapping = Spec.Mapping.Where(m => m.Key is not ("nested.date" or "label")).ToDictionary(),
    });

    private static readonly string[] Columns = ["Id", "Pk", "A", "B", "C", "D", "E", "F", "G", "H"];

    private static readonly SourceSchema Schema = new(Columns);

    private static readonly object?[] Longs = [0L, 1L, -1L, 42L, 1999L, long.MinValue, long.MaxValue, -100L];

    private static readonly object?[] Texts =
    [
        Utf8(""), Utf8("abc"), Utf8("ABC"), Utf8("MiXeD Case"), Utf8(" padded "), Utf8("\ttab"), Utf8("tab\t"), Utf8("x\u00A0"),
        Utf8("\u00A0x"), Utf8("\u2003em"), Utf8("Ünïcödé"), Utf8("İstanbul"), Utf8("straße"), Utf8("emoji 😀"),
        Utf8("quote \" back \\ slash"), Utf8("ctl \u0001"), Utf8("nul\0inside"), Utf8("<html>&'"), Utf8("\u2028line"), Utf8("42"),
        Utf8(" 42 "), Utf8("-7"), Utf8("true"), Utf8("a/b"), Utf8("x\u0085"), Utf8("\u001Fx"), Utf8("x\u007F"),
        new byte[][] { [0xFF, 0x41] }, new byte[][] { [0xC3] }, new byte[][] { [0xED, 0xA0, 0x80] }, new byte[][] { [0x41, 0xC0, 0xAF] },
    ];

    private static readonly object?[] Dates =
    [
        Utf8("2024-02-29 23:59:59"), Utf8("2026-11-24T10:15:00.5Z"), Utf8("2026-11-24T12:15:00+02:00"), Utf8("2023-02-29 10:00:00"),
        Utf8("0001-01-01 00:00:00"), Utf8("9999-12-31T23:59:59.9999999Z"), Utf8(" 2024-01-01 00:00:00"), Utf8("2024-01-01 00:00:00 "),
        Utf8("2024-01-01T00:00:00.1234567"), Utf8("2024-01-01 00:00:00.000Z"), Utf8("2024-01-01T00:00:00.12345678Z"), Utf8("2024-13-01 00:00:00"),
    ];

    private static readonly object?[] Others = [null, 1.5, -0.0, 1e300, new byte[] { 1, 2, 3 }, 7m];

    /// <summary>Every value a column may hold (a store's text as its bytes, not always valid UTF-8; the rest as objects).</summary>
    private static readonly object?[] Pool = [.. Longs, .. Texts, .. Dates, .. Others];

    /// <summary>What each column mostly holds, so that most rows translate and their hashes are compared (not only errors).</summary>
    private static readonly object?[][] Likely = [Longs, Texts, Texts, Dates, Longs, Longs, Dates, Texts, Texts, Texts];

    [Property(MaxTest = 3000)]
    public Property A_row_read_in_place_hashes_as_the_same_row_of_objects(int seed)
    {
        var random = new Random(seed);
        var stored = new object?[Columns.Length];
        for (var i = 0; i < stored.Length; i++)
        {
            var pool = random.Next(8) == 0 ? Pool : Likely[i];
            stored[i] = pool[random.Next(pool.Length)];
        }

        // Mostly translatable rows (a usable id and partition key), so that hashes are compared and not only errors.
        if (random.Next(4) > 0)
        {
            stored[0] = (long)random.Next(1, 1_000_000);
            stored[1] = Utf8("p" + random.Next(100).ToString(CultureInfo.InvariantCulture));
        }

        if (random.Next(3) == 0)
        {
            // A date of any instant, in one of the common shapes.
            var at = new DateTime((long)(random.NextDouble() * DateTime.MaxValue.Ticks), DateTimeKind.Utc);
            stored[6] = Utf8(at.ToString(random.Next(3) switch { 0 => "yyyy-MM-dd HH:mm:ss", 1 => "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", _ => "O" }, CultureInfo.InvariantCulture));
        }

        var record = new StoredRecord(stored);
        var row = new SourceRow(Schema, Enumerable.Range(0, Columns.Length).Select(record.GetValue).ToArray());

        var inPlace = Translator.Hash(record, Schema, out var inPlaceErrors);
        var asObjects = Translator.Hash(row, out var objectErrors);

        return (inPlace == asObjects && (inPlaceErrors ?? []).SequenceEqual(objectErrors ?? []))
            .Label($"{Show(stored)}: {inPlace} / {asObjects}; {string.Join("; ", inPlaceErrors ?? [])} / {string.Join("; ", objectErrors ?? [])}");
    }

    [Fact]
    public void Common_values_are_converted_where_they_lie()
    {
        // GetValue throws for integers and text: the row hashes only if every one of them is read in place.
        var stored = new object?[] { 42L, Utf8("p1"), Utf8("Lyon"), 7L, 12L, 1999L, Utf8("2026-11-24 10:15:00"), Utf8("SHIPPED"), Utf8("fr"), Utf8("x") };
        var record = new StoredRecord(stored, objectsForbidden: true);

        var hash = Plain.Hash(record, Schema, out var errors);

        Assert.Null(errors);
        var expected = Plain.Translate(new SourceRow(Schema, Enumerable.Range(0, Columns.Length).Select(new StoredRecord(stored).GetValue).ToArray()));
        Assert.Equal(expected.Document!.Hash, hash);
        Assert.Contains("\"at\":\"2026-11-24T10:15:00Z\"", expected.Document.JsonText, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_column_is_an_error_as_for_a_row_of_objects()
    {
        var schema = new SourceSchema(Columns.Where(c => c != "D").ToArray());
        var stored = new object?[] { 42L, Utf8("p1"), Utf8("Lyon"), Utf8("2026-11-24 10:15:00"), 12L, Utf8("2026-11-24 10:15:00"), Utf8("SHIPPED"), Utf8("fr"), Utf8("x") };

        Assert.Null(Translator.Hash(new StoredRecord(stored), schema, out var errors));
        var error = Assert.Single(errors!);
        Assert.Equal(TranslationErrorKind.MissingColumn, error.Kind);
        Assert.Equal("D", error.Column);
    }

    private static byte[][] Utf8(string text) => [Encoding.UTF8.GetBytes(text)];

    private static string Show(object?[] stored) => string.Join(", ", stored.Select(v => v switch
    {
        null => "NULL",
        byte[][] text => "'" + Convert.ToHexString(text[0]) + "'",
        byte[] blob => "x" + Convert.ToHexString(blob),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture),
    }));

    /// <summary>
    /// A row as a reader holds it: a text value is its bytes (wrapped, to tell it from a blob), read as the string a store
    /// decodes them to (invalid sequences replaced); longs are whole numbers; anything else is read as an object.
    /// </summary>
    private sealed class StoredRecord(object?[] stored, bool objectsForbidden = false) : ISourceRecord
    {
        public SourceValueKind KindOf(int ordinal) => stored[ordinal] switch
        {
            null => SourceValueKind.Null,
            long => SourceValueKind.WholeNumber,
            byte[][] => SourceValueKind.Text,
            _ => SourceValueKind.Other,
        };

        public long GetInt64(int ordinal) => (long)stored[ordinal]!;

        public ReadOnlySpan<byte> GetUtf8(int ordinal) => ((byte[][])stored[ordinal]!)[0];

        public object? GetValue(int ordinal)
        {
            if (objectsForbidden && stored[ordinal] is long or byte[][])
            {
                throw new InvalidOperationException($"column {ordinal} was read as an object");
            }

            return stored[ordinal] is byte[][] text ? Encoding.UTF8.GetString(text[0]) : stored[ordinal];
        }
    }
}
