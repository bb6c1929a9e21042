using System.Globalization;
using System.Text.RegularExpressions;

namespace Rollout.Core.Spec;

/// <summary>
/// ISO-8601 durations as the spec uses them: <c>P1DT2H30M</c>, <c>PT10M</c>, <c>PT1.5S</c>, <c>P2W</c>.
/// Years and months are refused on purpose: their length depends on the calendar.
/// </summary>
public static partial class IsoDuration
{
    /// <summary>Parses a duration.</summary>
    /// <param name="text">The ISO-8601 text.</param>
    /// <param name="value">The parsed duration.</param>
    /// <returns>False when the text is not a duration this parser accepts.</returns>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var match = DurationRegex().Match(text);
        if (!match.Success || text is "P" or "PT" || text.EndsWith('T'))
        {
            return false;
        }

        try
        {
            var weeks = Part(match, "w");
            var days = Part(match, "d");
            var hours = Part(match, "h");
            var minutes = Part(match, "m");
            var seconds = Part(match, "s");
            var total = (((((weeks * 7) + days) * 24) + hours) * 60 + minutes) * 60 + seconds;
            if (total > (decimal)TimeSpan.MaxValue.TotalSeconds / 2)
            {
                return false;
            }

            value = TimeSpan.FromTicks((long)(total * TimeSpan.TicksPerSecond));
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    /// <summary>Parses a duration or throws <see cref="FormatException"/>.</summary>
    /// <param name="text">The ISO-8601 text.</param>
    public static TimeSpan Parse(string text) =>
        TryParse(text, out var value) ? value : throw new FormatException($"'{text}' is not an ISO-8601 duration such as PT10M.");

    /// <summary>Formats a duration in the same notation (<c>PT1H30M</c>).</summary>
    /// <param name="value">A non-negative duration.</param>
    public static string Format(TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            return "PT0S";
        }

        var text = "P";
        if (value.Days > 0)
        {
            text += value.Days.ToString(CultureInfo.InvariantCulture) + "D";
        }

        var time = value - TimeSpan.FromDays(value.Days);
        if (time > TimeSpan.Zero)
        {
            text += "T";
            if (time.Hours > 0) text += time.Hours.ToString(CultureInfo.InvariantCulture) + "H";
            if (time.Minutes > 0) text += time.Minutes.ToString(CultureInfo.InvariantCulture) + "M";
            var seconds = time.Seconds + (time.Ticks % TimeSpan.TicksPerSecond / (decimal)TimeSpan.TicksPerSecond);
            if (seconds > 0) text += seconds.ToString("0.###", CultureInfo.InvariantCulture) + "S";
        }

        return text;
    }

    private static decimal Part(Match match, string group) =>
        match.Groups[group].Success ? decimal.Parse(match.Groups[group].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) : 0m;

    [GeneratedRegex(@"^P(?:(?<w>\d{1,6})W|(?:(?<d>\d{1,6})D)?(?:T(?:(?<h>\d{1,7})H)?(?:(?<m>\d{1,9})M)?(?:(?<s>\d{1,10}(?:\.\d{1,7})?)S)?)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationRegex();
}
