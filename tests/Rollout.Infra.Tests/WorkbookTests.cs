using System.Text.Json.Nodes;

namespace Rollout.Infra.Tests;

/// <summary>The workbook and the alerts run the same KQL as the health monitor and each other (one source of truth).</summary>
[Collection(InfraCollection.Name)]
public sealed class WorkbookTests(InfraFixture infra)
{
    [Fact]
    public void The_committed_workbook_is_its_template_rendered_with_the_health_and_alert_queries()
    {
        var rendered = Workbook.Render();
        if (Environment.GetEnvironmentVariable(Workbook.UpdateVariable) == "1")
        {
            File.WriteAllText(Workbook.GeneratedPath, rendered);
        }

        File.ReadAllText(Workbook.GeneratedPath).ReplaceLineEndings("\n").ShouldBe(
            rendered,
            $"infra/monitoring/rollout.workbook.json is generated: run `{Workbook.UpdateVariable}=1 dotnet test tests/Rollout.Infra.Tests` after changing its template, the health query or an alert query");
    }

    [Fact]
    public void The_health_tiles_run_the_health_monitors_query_over_the_workbooks_feature_and_time_range()
    {
        var health = Workbook.HealthQuery();
        health.ShouldContain("let from_ = datetime({TimeRange:start});");
        health.ShouldContain("let to_ = datetime({TimeRange:end});");
        health.ShouldContain("let feature_ = \"{Feature}\";");
        health.ShouldNotContain("2000-01-0");

        var items = Workbook.QueryItems(GeneratedWorkbook());
        var healthItems = items.Where(i => i.Key.StartsWith("health-", StringComparison.Ordinal)).ToList();
        healthItems.Select(i => i.Key).ShouldBe(["health-counts", "health-latency", "health-drift"], ignoreOrder: true);
        foreach (var (name, content) in healthItems)
        {
            content["query"]!.GetValue<string>().ShouldStartWith(health + "\n| where part == ", customMessage: name);
        }
    }

    [Fact]
    public void The_alert_tiles_run_the_alerts_queries()
    {
        var items = Workbook.QueryItems(GeneratedWorkbook());
        items["feed-lag"]["query"]!.GetValue<string>().ShouldStartWith(Workbook.AlertQuery("feed-lag").TrimEnd() + "\n| where feature == \"{Feature}\"");
        items["dead-letters"]["query"]!.GetValue<string>().ShouldStartWith(Workbook.AlertQuery("dead-letters").TrimEnd() + "\n| where feature == \"{Feature}\"");
        items["rollbacks"]["query"]!.GetValue<string>().ShouldStartWith(Workbook.AlertQuery("rollback").TrimEnd() + "\n| where feature == \"{Feature}\"");
    }

    [Fact]
    public void The_deployment_carries_the_committed_workbook_and_alert_queries_verbatim()
    {
        var alertsModule = infra.Main.OfType("Microsoft.Resources/deployments").Single(d => d.Node["name"]!.GetValue<string>() == "alerts");
        // loadTextContent compiles to a template variable that holds the file's text.
        alertsModule.Text(alertsModule.Properties!["parameters"]!["workbookSerializedData"]!["value"]).ShouldBe(File.ReadAllText(Workbook.GeneratedPath));
        var workbook = infra.Main.Single("Microsoft.Insights/workbooks");
        workbook.Properties!["serializedData"]!.GetValue<string>().ShouldBe("[replace(parameters('workbookSerializedData'), '__WORKSPACE_RESOURCE_ID__', parameters('workspaceId'))]");

        var queries = AlertTests.Queries(infra);
        queries["feed-lag"].ShouldBe(Workbook.AlertQuery("feed-lag"));
        queries["dead-letters"].ShouldBe(Workbook.AlertQuery("dead-letters"));
        // The rollback alert counts the rows of its file that were ingested since its previous evaluation.
        queries["rollback"].ShouldStartWith(Workbook.AlertQuery("rollback") + "| where ingested > ago(5m)\n");
    }

    [Fact]
    public void The_workbook_shows_exposure_error_rate_latency_feed_lag_drift_rollbacks_and_approvals()
    {
        var items = Workbook.QueryItems(GeneratedWorkbook());
        foreach (var name in new[] { "exposure-over-time", "phase-changes", "error-rate-over-time", "latency-over-time", "health-counts", "health-latency", "feed-lag", "drift-over-time", "rollbacks", "approvals-rollbacks" })
        {
            items.Keys.ShouldContain(name);
        }

        items["exposure-over-time"]["query"]!.GetValue<string>().ShouldContain("rollout.exposure");
        items["approvals-rollbacks"]["query"]!.GetValue<string>().ShouldContain("approval in phase");
    }

    /// <summary>What the KQL check (<see cref="KqlTests"/>) cannot see: every item queries the workspace over the time range.</summary>
    [Fact]
    public void Every_workbook_query_reads_the_workspace_over_the_selected_time_range()
    {
        var workbook = GeneratedWorkbook();
        workbook["fallbackResourceIds"]![0]!.GetValue<string>().ShouldBe("__WORKSPACE_RESOURCE_ID__");
        var queries = Workbook.QueryItems(workbook);
        queries.Count.ShouldBeGreaterThanOrEqualTo(12);
        foreach (var (name, content) in queries)
        {
            content["resourceType"]!.GetValue<string>().ShouldBe("microsoft.operationalinsights/workspaces", name);
            content["timeContextFromParameter"]!.GetValue<string>().ShouldBe("TimeRange", name);
        }
    }

    private static JsonNode GeneratedWorkbook() => JsonNode.Parse(File.ReadAllText(Workbook.GeneratedPath))!;
}
