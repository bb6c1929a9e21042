using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rollout.Core.Translation;

namespace Rollout.Core.Tests.Translation;

/// <summary>The direct ISO date/time parsing and formatting agree with the framework's, which they only make cheaper.</summary>
public sealed class DateTimeFastPathTests
{
    private const DateTimeStyles Utc = DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal;

    [Property(MaxTest = 3000)]
    public Property Formatting_equals_the_custom_format_string(long seed)
    {
        var instant = new DateTimeOffset(new DateTime((long)((ulong)seed % (ulong)DateTime.MaxValue.Ticks), DateTimeKind.Utc));

        return (Conversions.FormatInstant(instant) == instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture))
            .Label(instant.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
    }

    [Property(MaxTest = 3000)]
    public Property Parsing_the_common_shapes_gives_the_instant_the_framework_gives(long seed, bool t, byte digits, bool z)
    {
        var ticks = (long)((ulong)seed % (ulong)DateTime.MaxValue.Ticks);
        var at = new DateTime(ticks, DateTimeKind.Utc);
        var n = digits % 8;
        var text = at.ToString(t ? "yyyy-MM-dd'T'HH:mm:ss" : "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
            + (n == 0 ? string.Empty : "." + (ticks % TimeSpan.TicksPerSecond).ToString("D7", CultureInfo.InvariantCulture)[..n])
            + (z ? "Z" : string.Empty);

        var fast = Conversions.TryParseIsoUtc(text, out var direct);
        var framework = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, Utc, out var parsed);

        return (fast && framework && direct == parsed && direct.Offset == TimeSpan.Zero).Label(text);
    }

    [Theory]
    [InlineData("2024-02-29 23:59:59")]
    [InlineData("2026-11-24T10:15:00.5Z")]
    [InlineData("0001-01-01 00:00:00")]
    [InlineData("9999-12-31T23:59:59.9999999Z")]
    public void Edge_dates_parse_directly_and_as_the_framework_does(string text)
    {
        Assert.True(Conversions.TryParseIsoUtc(text, out var direct));
        Assert.True(DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, Utc, out var parsed));
        Assert.Equal(parsed, direct);
    }

    [Theory]
    [InlineData("2023-02-29 10:00:00")] // no such day
    [InlineData("2026-13-01 10:00:00")]
    [InlineData("2026-11-24 24:00:00")]
    [InlineData("2026-11-24T10:15:00+02:00")] // an offset: the framework's parser handles it
    [InlineData("2026-11-24T10:15:00.")]
    [InlineData("2026-11-24T10:15:00.12345678")]
    [InlineData("24/11/2026 10:15")]
    [InlineData("2026-11-24")]
    public void Other_text_is_left_to_the_framework(string text) => Assert.False(Conversions.TryParseIsoUtc(text, out _));

    [Fact]
    public void Text_with_an_offset_still_converts_through_the_framework()
    {
        var translator = DocumentTranslator.Compile(Rollout.Core.Spec.RolloutSpecLoader.Load(File.ReadAllText(SpecFixtures.SamplePath("orders.rollout.json"))).Spec!);
        var values = DocumentTranslatorTests.OrderValues();
        values["PlacedAt"] = "2026-11-24T12:15:00+02:00";

        Assert.Contains("\"placedAt\":\"2026-11-24T10:15:00Z\"", translator.Translate(SourceRow.From(values)).Document!.JsonText, StringComparison.Ordinal);
    }
}
