using System.Text.Json.Nodes;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Tests.Translation;

public sealed class ConversionsTests
{
    public static TheoryData<string, object, string> Converts => new()
    {
        { "string", 42L, "\"42\"" },
        { "string", 1.5m, "\"1.5\"" },
        { "string", new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc), "\"2026-01-02T03:04:05Z\"" },
        { "int64", "  17 ", "17" },
        { "int64", 3.0, "3" },
        { "decimal", "12.50", "12.5" },
        { "decimal", 7L, "7" },
        { "double", "2.5", "2.5" },
        { "boolean", 0L, "false" },
        { "boolean", "TRUE", "true" },
        { "boolean", "1", "true" },
        { "centsToDecimal", 1999L, "19.99" },
        { "centsToDecimal", "-5", "-0.05" },
        { "isoDateTime", "2026-11-24T10:15:00+01:00", "\"2026-11-24T09:15:00Z\"" },
        { "isoDateTime", "2026-11-24 10:15:00.5", "\"2026-11-24T10:15:00.5Z\"" },
        { "isoDateTime", new DateTimeOffset(2026, 11, 24, 10, 0, 0, TimeSpan.FromHours(2)), "\"2026-11-24T08:00:00Z\"" },
        { "unixSecondsToIso", 0L, "\"1970-01-01T00:00:00Z\"" },
        { "unixMillisToIso", 1500L, "\"1970-01-01T00:00:01.5Z\"" },
        { "lower", "ÀbC", "\"àbc\"" },
        { "upper", "fr", "\"FR\"" },
        { "trim", "  x ", "\"x\"" },
        { "guid", "4F0C2A8E1B7D4C559E0A2D5F3C1B6A77", "\"4f0c2a8e-1b7d-4c55-9e0a-2d5f3c1b6a77\"" },
        { "json", "[1, {\"b\":2, \"a\":1}]", "[1,{\"a\":1,\"b\":2}]" },
    };

    public static TheoryData<string, object> Refuses => new()
    {
        { "int64", "12.5" },
        { "int64", 2.5 },
        { "decimal", "twelve" },
        { "double", double.NaN },
        { "double", "inf" },
        { "boolean", 2L },
        { "boolean", "maybe" },
        { "centsToDecimal", 19.5 },
        { "isoDateTime", "not a date" },
        { "unixSecondsToIso", long.MaxValue },
        { "lower", 5L },
        { "guid", "not-a-guid" },
        { "json", "{ broken" },
    };

    [Theory]
    [MemberData(nameof(Converts))]
    public void Converts_values(string conversion, object value, string json)
    {
        var result = Translator(conversion).Translate(Row(value));

        Assert.True(result.IsSuccess, string.Join("; ", result.Errors));
        Assert.Equal(JsonNode.Parse(json)!.ToJsonString(), JsonNode.Parse(result.Document!.JsonText)!["v"]!.ToJsonString());
    }

    [Theory]
    [MemberData(nameof(Refuses))]
    public void Refuses_values_it_cannot_convert(string conversion, object value)
    {
        var error = Assert.Single(Translator(conversion).Translate(Row(value)).Errors);

        Assert.Equal(TranslationErrorKind.ConversionFailed, error.Kind);
        Assert.Equal("V", error.Column);
        Assert.StartsWith(conversion + ":", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_conversion_is_described_and_covered_by_a_test()
    {
        var tested = Converts.Select(row => (string)row[0]).ToHashSet();

        Assert.All(Conversions.Names, name =>
        {
            Assert.False(string.IsNullOrWhiteSpace(Conversions.Describe(name)));
            Assert.Contains(name, tested);
        });
    }

    [Fact]
    public void Values_without_a_conversion_keep_their_json_type()
    {
        var translator = Translator(null);

        Assert.Equal("5", Value(translator, 5));
        Assert.Equal("true", Value(translator, true));
        Assert.Equal("\"AQI=\"", Value(translator, new byte[] { 1, 2 }));
        Assert.Equal("0.25", Value(translator, 0.25));
        Assert.Single(translator.Translate(Row(new object())).Errors);
    }

    private static string Value(DocumentTranslator translator, object value) =>
        JsonNode.Parse(translator.Translate(Row(value)).Document!.JsonText)!["v"]!.ToJsonString();

    private static DocumentTranslator Translator(string? conversion) =>
        DocumentTranslator.Compile(SpecFixtures.Spec() with
        {
            Mapping = new Dictionary<string, FieldRuleSpec>
            {
                ["id"] = new() { From = "Id" },
                ["customerId"] = new() { From = "Id" },
                ["v"] = new() { From = "V", Convert = conversion },
            },
        });

    private static SourceRow Row(object value) => SourceRow.From(new Dictionary<string, object?> { ["Id"] = "1", ["V"] = value });
}
