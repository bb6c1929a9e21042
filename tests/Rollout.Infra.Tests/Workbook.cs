using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Infra.Tests;

/// <summary>
/// The Azure Monitor workbook (infra/monitoring/rollout.workbook.json) is generated: its template with the health
/// monitor's own KQL (<see cref="LogAnalyticsHealthQuery.Build"/>, workbook parameters in place of the feature and
/// window) and the alerts' KQL files in place of tokens. One source of truth for each query.
/// </summary>
internal static class Workbook
{
    public const string UpdateVariable = "ROLLOUT_UPDATE_WORKBOOK";

    private const string PlaceholderFeature = "workbook-feature";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string MonitoringDirectory => Path.Combine(Bicep.InfraDirectory, "monitoring");

    public static string TemplatePath => Path.Combine(MonitoringDirectory, "rollout.workbook.template.json");

    public static string GeneratedPath => Path.Combine(MonitoringDirectory, "rollout.workbook.json");

    /// <summary>The health monitor's query with the workbook's parameters for the feature and the time range.</summary>
    public static string HealthQuery()
    {
        var from = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var kql = LogAnalyticsHealthQuery.Build(PlaceholderFeature, from, from.AddDays(1));
        kql = ReplaceOnce(kql, "datetime(2000-01-01T00:00:00.0000000Z)", "datetime({TimeRange:start})");
        kql = ReplaceOnce(kql, "datetime(2000-01-02T00:00:00.0000000Z)", "datetime({TimeRange:end})");
        return ReplaceOnce(kql, $"\"{PlaceholderFeature}\"", "\"{Feature}\"");
    }

    /// <summary>An alert's query (infra/monitoring/NAME.kql), as the alert rule loads it.</summary>
    public static string AlertQuery(string name) => File.ReadAllText(Path.Combine(MonitoringDirectory, name + ".kql"));

    public static string Render()
    {
        var tokens = new Dictionary<string, string>
        {
            ["{{HEALTH_QUERY}}"] = HealthQuery(),
            ["{{FEED_LAG_QUERY}}"] = AlertQuery("feed-lag").TrimEnd(),
            ["{{DEAD_LETTERS_QUERY}}"] = AlertQuery("dead-letters").TrimEnd(),
            ["{{ROLLBACK_QUERY}}"] = AlertQuery("rollback").TrimEnd(),
        };
        var template = JsonNode.Parse(File.ReadAllText(TemplatePath))!;
        Substitute(template, tokens);
        return template.ToJsonString(Indented).ReplaceLineEndings("\n") + "\n";
    }

    /// <summary>Every Log Analytics query item of a workbook, by item name.</summary>
    public static Dictionary<string, JsonObject> QueryItems(JsonNode workbook) =>
        workbook["items"]!.AsArray()
            .Where(i => i!["type"]!.GetValue<int>() == 3)
            .ToDictionary(i => i!["name"]!.GetValue<string>(), i => i!["content"]!.AsObject());

    private static void Substitute(JsonNode node, Dictionary<string, string> tokens)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj.ToList())
                {
                    if (value is JsonValue v && v.TryGetValue<string>(out var text))
                    {
                        obj[key] = tokens.Aggregate(text, (t, token) => t.Replace(token.Key, token.Value, StringComparison.Ordinal));
                    }
                    else if (value is not null)
                    {
                        Substitute(value, tokens);
                    }
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    if (item is not null)
                    {
                        Substitute(item, tokens);
                    }
                }

                break;
        }
    }

    private static string ReplaceOnce(string text, string placeholder, string replacement)
    {
        var first = text.IndexOf(placeholder, StringComparison.Ordinal);
        if (first < 0 || text.IndexOf(placeholder, first + 1, StringComparison.Ordinal) >= 0)
        {
            throw new InvalidOperationException($"The health query no longer has '{placeholder}' exactly once; update Workbook.HealthQuery to its new shape.\n{text}");
        }

        return text.Replace(placeholder, replacement, StringComparison.Ordinal);
    }
}
