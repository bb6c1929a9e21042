using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rollout.Infra.Tests;

/// <summary>The workbook and the alerts run the same KQL as the health monitor and each other (one source of truth).</summary>
[Collection(InfraCollection.Name)]
public sealed partial class WorkbookTests(InfraFixture infra)
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
        var value = alertsModule.Properties!["parameters"]!["workbookSerializedData"]!["value"]!.GetValue<string>();
        Loaded(infra.Main.Root, value).ShouldBe(File.ReadAllText(Workbook.GeneratedPath));
        var workbook = infra.Main.Single("Microsoft.Insights/workbooks");
        workbook.Properties!["serializedData"]!.GetValue<string>().ShouldBe("[replace(parameters('workbookSerializedData'), '__WORKSPACE_RESOURCE_ID__', parameters('workspaceId'))]");

        var queries = infra.Main.OfType("Microsoft.Insights/scheduledQueryRules")
            .Select(r => Loaded(r.Template, r.Properties!["criteria"]!["allOf"]![0]!["query"]!.GetValue<string>()))
            .ToList();
        queries.ShouldBe([Workbook.AlertQuery("rollback"), Workbook.AlertQuery("dead-letters"), Workbook.AlertQuery("feed-lag")], ignoreOrder: true);
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

    /// <summary>
    /// No KQL parser is available here (Kusto.Language is not served), so this checks what can be checked without
    /// one: brackets balance outside string literals, strings close, every token was substituted, only the
    /// workbook's own parameters are referenced, and every item queries the Log Analytics workspace.
    /// </summary>
    [Fact]
    public void Every_workbook_query_is_well_formed_as_far_as_can_be_checked_without_a_kql_parser()
    {
        var workbook = GeneratedWorkbook();
        workbook["fallbackResourceIds"]![0]!.GetValue<string>().ShouldBe("__WORKSPACE_RESOURCE_ID__");
        var parameterQuery = workbook["items"]![0]!["content"]!["parameters"]![1]!["query"]!.GetValue<string>();
        var queries = Workbook.QueryItems(workbook).Select(i => (i.Key, Content: i.Value)).ToList();
        queries.Count.ShouldBeGreaterThanOrEqualTo(12);
        foreach (var (name, content) in queries)
        {
            content["resourceType"]!.GetValue<string>().ShouldBe("microsoft.operationalinsights/workspaces", name);
            content["timeContextFromParameter"]!.GetValue<string>().ShouldBe("TimeRange", name);
            CheckQuery(name, content["query"]!.GetValue<string>());
        }

        CheckQuery("Feature parameter", parameterQuery);
        foreach (var alert in new[] { "rollback", "dead-letters", "feed-lag" })
        {
            CheckQuery(alert, Workbook.AlertQuery(alert));
        }
    }

    [Theory]
    [InlineData("T | where (a == \"x\"", "unbalanced")]
    [InlineData("T | where a == \"x)", "unterminated")]
    [InlineData("T | where a == {Other}", "parameter")]
    public void The_well_formedness_check_rejects_broken_queries(string query, string expected) =>
        Should.Throw<Shouldly.ShouldAssertException>(() => CheckQuery("broken", query)).Message.ShouldContain(expected, Case.Insensitive);

    /// <summary>The text a <c>loadTextContent</c> put in a template variable.</summary>
    private static string Loaded(JsonObject template, string value)
    {
        var variable = LoadedVariable().Match(value);
        variable.Success.ShouldBeTrue(value);
        return template["variables"]![variable.Groups["name"].Value]!.GetValue<string>();
    }

    private static JsonNode GeneratedWorkbook() => JsonNode.Parse(File.ReadAllText(Workbook.GeneratedPath))!;

    private static void CheckQuery(string name, string query)
    {
        query.ShouldNotContain("{{", customMessage: $"{name}: a token was not substituted");
        var stack = new Stack<char>();
        char? quote = null;
        for (var i = 0; i < query.Length; i++)
        {
            var c = query[i];
            if (quote is { } q)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == q)
                {
                    quote = null;
                }
                else if (c == '\n')
                {
                    throw new ShouldAssertException($"{name}: unterminated string literal before line end");
                }

                continue;
            }

            if (c == '/' && i + 1 < query.Length && query[i + 1] == '/')
            {
                i = query.IndexOf('\n', i) is var end and >= 0 ? end : query.Length;
                continue;
            }

            switch (c)
            {
                case '"' or '\'':
                    quote = c;
                    break;
                case '(' or '[':
                    stack.Push(c);
                    break;
                case ')' or ']':
                    if (stack.Count == 0 || stack.Pop() != (c == ')' ? '(' : '['))
                    {
                        throw new ShouldAssertException($"{name}: unbalanced '{c}' at {i}");
                    }

                    break;
            }
        }

        if (quote is not null)
        {
            throw new ShouldAssertException($"{name}: unterminated string literal");
        }

        if (stack.Count != 0)
        {
            throw new ShouldAssertException($"{name}: unbalanced brackets ({stack.Count} left open)");
        }

        foreach (Match parameter in WorkbookParameter().Matches(query))
        {
            parameter.Value.ShouldBeOneOf(["{Feature}", "{TimeRange}", "{TimeRange:start}", "{TimeRange:end}", "{TimeRange:grain}"], $"{name}: unknown workbook parameter");
        }
    }

    [GeneratedRegex(@"^\[variables\('(?<name>[^']+)'\)\]$")]
    private static partial Regex LoadedVariable();

    [GeneratedRegex(@"\{[A-Za-z][\w:]*\}")]
    private static partial Regex WorkbookParameter();
}
