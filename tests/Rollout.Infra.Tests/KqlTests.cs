using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Infra.Tests;

/// <summary>
/// Every query the deployment runs (the workbook's, the health monitor's and the alerts') parses and binds against the
/// Application Insights tables with Kusto.Language: no syntax error, no unknown table, column or function. The alert
/// rules' queries, as deployed, are checked by <see cref="AlertTests"/>.
/// </summary>
public sealed class KqlTests
{
    [Fact]
    public async Task Every_workbook_query_has_no_kql_error_against_the_workspace_tables()
    {
        var workbook = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Workbook.GeneratedPath))!;
        var queries = Workbook.QueryItems(workbook).ToDictionary(i => i.Key, i => Kql.WithWorkbookParameters(i.Value["query"]!.GetValue<string>()));
        queries.Count.ShouldBeGreaterThanOrEqualTo(12);
        queries["parameter Feature"] = Kql.WithWorkbookParameters(workbook["items"]![0]!["content"]!["parameters"]![1]!["query"]!.GetValue<string>());

        var errors = await Kql.ErrorsAsync(queries);
        errors.ShouldBeEmpty(string.Join('\n', errors));
    }

    [Fact]
    public async Task The_health_monitors_query_has_no_kql_error_against_the_workspace_tables()
    {
        var from = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var errors = await Kql.ErrorsAsync(new Dictionary<string, string> { ["health"] = LogAnalyticsHealthQuery.Build("orders-v2", from, from.AddMinutes(30)) });
        errors.ShouldBeEmpty(string.Join('\n', errors));
    }

    [Fact]
    public async Task The_kql_check_reports_broken_queries_so_a_clean_run_means_something()
    {
        var broken = new Dictionary<string, string>
        {
            ["unbalanced"] = "AppMetrics | where (Name == \"x\"",
            ["unterminated string"] = "AppMetrics | where Name == \"x",
            ["unknown column"] = "AppMetrics | where Nmae == \"x\"",
            ["unknown table"] = "AppMetric | take 1",
            ["unknown function"] = "AppMetrics | summarize sums(Sum)",
            ["column of another table"] = "AppMetrics | where DurationMs > 100",
            ["wrong argument type"] = "AppMetrics | where TimeGenerated > ago(\"5m\")",
        };
        var errors = await Kql.ErrorsAsync(broken);
        foreach (var name in broken.Keys)
        {
            errors.ShouldContain(e => e.StartsWith(name + ":", StringComparison.Ordinal), $"{name} was not reported; reported:\n{string.Join('\n', errors)}");
        }

        (await Kql.ErrorsAsync(new Dictionary<string, string> { ["fine"] = "AppMetrics | where Name == \"x\" | summarize sum(Sum) by bin(TimeGenerated, 5m)" })).ShouldBeEmpty();
    }

    [Fact]
    public void A_workbook_parameter_the_workbook_does_not_declare_fails_the_check() =>
        Should.Throw<ShouldAssertException>(() => Kql.WithWorkbookParameters("AppMetrics | where Name == \"{Other}\"")).Message.ShouldContain("{Other}");
}
