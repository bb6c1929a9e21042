using System.Text.RegularExpressions;

namespace Rollout.Infra.Tests;

/// <summary>What each alert measures: its query (infra/monitoring/*.kql, parsed by <see cref="KqlTests"/>) and its rule.</summary>
public sealed partial class AlertTests
{
    [Fact]
    public void Feed_lag_ignores_writes_within_two_export_intervals_of_the_last_batch()
    {
        // The gate's and the feed's metrics are exported by two processes, each every 60 s: the write a batch applied
        // can be recorded up to a minute after that batch.
        var kql = Code("feed-lag");
        var grace = GraceLet().Match(kql);
        grace.Success.ShouldBeTrue(kql);
        TimeSpan.FromMinutes(int.Parse(grace.Groups["minutes"].Value, System.Globalization.CultureInfo.InvariantCulture)).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMinutes(2));
        kql.ShouldContain("| where isnull(lastBatch) or TimeGenerated > lastBatch + grace |");
    }

    [Fact]
    public void Feed_lag_counts_only_successful_writes()
    {
        var kql = Code("feed-lag");
        kql.ShouldContain("tostring(Properties[\"rollout.kind\"]) in (\"write\", \"write-fallback\") and tostring(Properties[\"rollout.outcome\"]) == \"ok\"");
        kql.ShouldNotContain("\"error\"");
        kql.ShouldNotContain("\"timeout\"");
    }

    /// <summary>An alert's query without its comments, on one line with single spaces.</summary>
    private static string Code(string alert) =>
        Whitespace().Replace(string.Join(' ', Workbook.AlertQuery(alert).Split('\n').Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal))), " ").Trim();

    [GeneratedRegex(@"let grace = (?<minutes>\d+)m;")]
    private static partial Regex GraceLet();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
