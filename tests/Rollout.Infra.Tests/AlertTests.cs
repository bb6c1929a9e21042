using System.Text.RegularExpressions;

namespace Rollout.Infra.Tests;

/// <summary>What each alert measures: its query (infra/monitoring/*.kql, parsed by <see cref="KqlTests"/>) and its rule.</summary>
[Collection(InfraCollection.Name)]
public sealed partial class AlertTests(InfraFixture infra)
{
    /// <summary>Each scheduled query rule's query as deployed, by the rule's name without the prefix (rollback, …).</summary>
    public static Dictionary<string, string> Queries(InfraFixture infra) =>
        infra.Main.OfType("Microsoft.Insights/scheduledQueryRules").ToDictionary(
            r => RuleName().Match(r.Node["name"]!.GetValue<string>()).Groups["name"].Value,
            r => r.Text(r.Properties!["criteria"]!["allOf"]![0]!["query"]));

    [Fact]
    public async Task Every_alert_query_as_deployed_has_no_kql_error_against_the_workspace_tables()
    {
        var queries = Queries(infra);
        queries.Keys.ShouldBe(["rollback", "dead-letters", "feed-lag"], ignoreOrder: true);
        var errors = await Kql.ErrorsAsync(queries);
        errors.ShouldBeEmpty(string.Join('\n', errors));
    }

    [Fact]
    public void Rollback_looks_back_three_evaluations_and_counts_each_rollback_in_the_evaluation_after_its_ingestion()
    {
        var rule = Rule("rollback");
        rule.Properties!["evaluationFrequency"]!.GetValue<string>().ShouldBe("PT5M");
        rule.Properties!["windowSize"]!.GetValue<string>().ShouldBe("PT15M");
        rule.Properties!["autoMitigate"]!.GetValue<bool>().ShouldBeFalse();
        var query = Queries(infra)["rollback"];
        query.ShouldContain("| where ingested > ago(5m)\n| summarize rollbacks = sum(rollbacks) by feature");
        Workbook.AlertQuery("rollback").ShouldContain("ingested = ingestion_time()");
    }

    [Fact]
    public void Dead_letters_alert_on_the_most_open_dead_letters_the_apps_gauge_reported_in_the_window()
    {
        var gauges = new List<string>();
        using (var listener = new System.Diagnostics.Metrics.MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == Rollout.Core.RolloutMetrics.Name && instrument is System.Diagnostics.Metrics.ObservableGauge<long>)
                {
                    lock (gauges)
                    {
                        gauges.Add(instrument.Name);
                    }
                }
            };
            listener.Start();
            using var metrics = new Rollout.Core.RolloutMetrics();
        }

        gauges.ShouldContain("rollout.dualwrite.dead_letters.open");
        var kql = Code("dead-letters");
        kql.ShouldContain("| where Name == \"rollout.dualwrite.dead_letters.open\" |");
        kql.ShouldContain("| summarize openDeadLetters = max(Sum) by feature = tostring(Properties[\"rollout.feature\"])");

        var rule = Rule("dead-letters");
        var criterion = rule.Properties!["criteria"]!["allOf"]![0]!;
        criterion["timeAggregation"]!.GetValue<string>().ShouldBe("Maximum");
        criterion["metricMeasureColumn"]!.GetValue<string>().ShouldBe("openDeadLetters");
        criterion["operator"]!.GetValue<string>().ShouldBe("GreaterThan");
        criterion["threshold"]!.GetValue<string>().ShouldBe("[parameters('deadLetterThreshold')]");
        rule.Properties!["windowSize"]!.GetValue<string>().ShouldBe("PT30M");
        rule.Properties!["evaluationFrequency"]!.GetValue<string>().ShouldBe("PT15M");
        rule.Properties!["autoMitigate"]!.GetValue<bool>().ShouldBeTrue();
    }

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

    private ArmResource Rule(string name) =>
        infra.Main.OfType("Microsoft.Insights/scheduledQueryRules").Single(r => RuleName().Match(r.Node["name"]!.GetValue<string>()).Groups["name"].Value == name);

    /// <summary>An alert's query without its comments, on one line with single spaces.</summary>
    private static string Code(string alert) =>
        Whitespace().Replace(string.Join(' ', Workbook.AlertQuery(alert).Split('\n').Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal))), " ").Trim();

    [GeneratedRegex(@"-rollout-(?<name>[a-z-]+)'")]
    private static partial Regex RuleName();

    [GeneratedRegex(@"let grace = (?<minutes>\d+)m;")]
    private static partial Regex GraceLet();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
