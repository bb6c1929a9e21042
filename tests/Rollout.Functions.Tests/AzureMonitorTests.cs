using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.Json;
using Azure.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rollout.Core.Health;
using Rollout.Telemetry.AzureMonitor;

namespace Rollout.Functions.Tests;

/// <summary>
/// The health window read from Application Insights' Log Analytics workspace. No workspace can be reached from
/// here: the query's text and the reading of the API's documented answer are tested as pure logic, and the HTTP
/// exchange (token, route, body, errors) against a local stand-in on 127.0.0.1 that answers in the API's format.
/// </summary>
public sealed class AzureMonitorTests
{
    private static readonly DateTimeOffset From = new(2026, 11, 25, 5, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset To = From.AddMinutes(5);

    [Fact]
    public void The_query_names_the_feature_window_and_every_instrument_and_refuses_what_is_not_a_feature_key()
    {
        var kql = LogAnalyticsHealthQuery.Build("orders-v2", From, To);

        Assert.Contains("let feature_ = \"orders-v2\";", kql, StringComparison.Ordinal);
        Assert.Contains("datetime(2026-11-25T05:00:00.0000000Z)", kql, StringComparison.Ordinal);
        Assert.Contains("datetime(2026-11-25T05:05:00.0000000Z)", kql, StringComparison.Ordinal);
        foreach (var name in new[] { "rollout.gate.decisions", "rollout.gate.read", "rollout.gate.write", "rollout.reconcile.keys", "rollout.shadow.comparisons" })
        {
            Assert.Contains($"\"{name}\"", kql, StringComparison.Ordinal);
        }

        // KQL's union keeps one column per name *and type*: every part must build each column with the same type.
        foreach (var column in new[] { "bucket", "n", "errors" })
        {
            var definitions = System.Text.RegularExpressions.Regex.Matches(kql, $@"\b{column} = (\w+)\(").Select(m => m.Groups[1].Value).ToArray();
            Assert.Equal(3, definitions.Length);
            Assert.All(definitions, d => Assert.Equal("tolong", d));
        }

        Assert.Contains("Properties[\"rollout.duration_ms\"]", kql, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LogAnalyticsHealthQuery.Build("orders\" or 1==1 //", From, To));
        Assert.Throws<ArgumentException>(() => LogAnalyticsHealthQuery.Build("orders-v2", To, From));
    }

    [Fact]
    public void The_answer_becomes_the_same_health_window_the_embedded_store_gives_and_a_breach_is_judged_on_it()
    {
        // Legacy: 1000 requests, 5 errors, latencies ~10 ms; new path: 200 requests, 30 errors, ~400 ms.
        var window = LogAnalyticsHealthQuery.Read(Answer(
            ["count", "legacy", -1, 1000, 5],
            ["count", "new", -1, 200, 30],
            ["latency", "legacy", Bucket(10), 1000, 0],
            ["latency", "new", Bucket(400), 150, 0],
            ["latency", "new", Bucket(20), 50, 0],
            ["drift", "", -1, 500, 1]));

        Assert.Equal((1000L, 5L, 200L, 30L), (window.Legacy.Count, window.Legacy.Errors, window.Candidate.Count, window.Candidate.Errors));
        Assert.InRange(window.Candidate.Latency.Percentile(0.95)!.Value, 380, 420);
        Assert.InRange(window.Legacy.Latency.Percentile(0.95)!.Value, 9.5, 10.5);
        Assert.Equal((500L, 1L), (window.Drift.Compared, window.Drift.Drifted));

        var verdict = HealthEvaluator.Evaluate(new HealthBudgets(0.05, 250, null, 0.01, 20), window, candidateExposed: true);
        var breach = Assert.IsType<HealthVerdict.Breach>(verdict);
        Assert.Equal(["maxErrorRateIncrease", "maxP95LatencyMs"], breach.Breaches.Select(b => b.Budget).ToArray());
    }

    [Fact]
    public void An_answer_without_the_query_columns_is_refused_with_what_it_has()
    {
        using var answer = JsonDocument.Parse("""{"tables":[{"name":"PrimaryResult","columns":[{"name":"x","type":"long"}],"rows":[[1]]}]}""");

        var error = Assert.Throws<FormatException>(() => LogAnalyticsHealthQuery.Read(answer.RootElement));
        Assert.Contains("no 'part' column (it has: x)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_source_posts_the_query_with_a_bearer_token_to_the_workspace_and_explains_a_refusal()
    {
        var seen = new List<(string Path, string? Auth, JsonElement Body)>();
        var refuse = false;
        await using var app = await StandInAsync(async context =>
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            seen.Add((context.Request.Path.Value!, context.Request.Headers.Authorization.ToString(), body.RootElement.Clone()));
            context.Response.ContentType = "application/json";
            if (refuse)
            {
                context.Response.StatusCode = 403;
                await context.Response.WriteAsync("""{"error":{"code":"InsufficientAccessError","message":"The provided credentials have insufficient access to perform the requested operation"}}""");
                return;
            }

            await context.Response.WriteAsync(Answer(["count", "new", -1, 42, 1], ["count", "legacy", -1, 420, 2]).GetRawText());
        });
        var workspace = "4d6a1c2e-7f3b-4a9d-8e1f-0a2b3c4d5e6f";
        var requested = new List<string>();
        var credential = DelegatedTokenCredential.Create((context, _) =>
        {
            requested.AddRange(context.Scopes);
            return new AccessToken("token-123", DateTimeOffset.UtcNow.AddHours(1));
        });
        using var http = new HttpClient();
        var source = new LogAnalyticsHealthWindowSource(http, credential, new RolloutAzureMonitorOptions { WorkspaceId = workspace, QueryEndpoint = new Uri(app.Urls.First() + "/"), IngestionDelay = TimeSpan.FromMinutes(2) }, NullLogger<LogAnalyticsHealthWindowSource>.Instance);

        var window = await source.QueryWindowAsync("orders-v2", From, To, default);
        refuse = true;
        var error = await Assert.ThrowsAsync<LogAnalyticsQueryException>(() => source.QueryWindowAsync("orders-v2", From, To, default));

        Assert.Equal((42L, 1L, 420L), (window.Candidate.Count, window.Candidate.Errors, window.Legacy.Count));
        Assert.Equal($"/v1/workspaces/{workspace}/query", seen[0].Path);
        Assert.Equal("Bearer token-123", seen[0].Auth);
        // The window read is the one asked for, 2 min earlier (the ingestion delay).
        Assert.Equal(LogAnalyticsHealthQuery.Build("orders-v2", From.AddMinutes(-2), To.AddMinutes(-2)), seen[0].Body.GetProperty("query").GetString());
        Assert.Equal("2026-11-25T04:58:00.0000000Z/2026-11-25T05:03:00.0000000Z", seen[0].Body.GetProperty("timespan").GetString());
        Assert.Contains(app.Urls.First() + "/.default", requested);
        Assert.Contains("403", error.Message, StringComparison.Ordinal);
        Assert.Contains("InsufficientAccessError: The provided credentials have insufficient access", error.Message, StringComparison.Ordinal);
        Assert.Contains("Log Analytics Reader", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Registration_reads_from_the_workspace_when_one_is_set_and_refuses_a_workspace_that_is_not_an_id()
    {
        static IServiceProvider Build(params (string Key, string Value)[] settings)
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
            var services = new ServiceCollection().AddLogging();
            services.AddRolloutAzureMonitor(configuration);
            return services.BuildServiceProvider();
        }

        var none = Build();
        var workspace = Build(("Rollout:AzureMonitor:WorkspaceId", "4d6a1c2e-7f3b-4a9d-8e1f-0a2b3c4d5e6f"));
        var wrong = Assert.Throws<ValidationException>(() => Build(("Rollout:AzureMonitor:WorkspaceId", "my-workspace")));

        const string platform = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1/";
        var emptySetting = Build(("Rollout:AzureMonitor:ConnectionString", ""), ("APPLICATIONINSIGHTS_CONNECTION_STRING", platform));

        Assert.Equal(platform, emptySetting.GetRequiredService<RolloutAzureMonitorOptions>().ConnectionString); // an empty setting (the sample's) falls back
        Assert.Null(none.GetService<IHealthWindowSource>());
        Assert.IsType<LogAnalyticsHealthWindowSource>(workspace.GetService<IHealthWindowSource>());
        Assert.Contains("must be the workspace's id, a GUID", wrong.Message, StringComparison.Ordinal);
    }

    private static int Bucket(double ms) => (int)Math.Ceiling(Math.Log(ms / 0.05) / Math.Log(1.05));

    private static JsonElement Answer(params object[][] rows)
    {
        var json = JsonSerializer.Serialize(new
        {
            tables = new[]
            {
                new
                {
                    name = "PrimaryResult",
                    columns = new[] { ("part", "string"), ("path", "string"), ("bucket", "int"), ("n", "long"), ("errors", "long") }.Select(c => new { name = c.Item1, type = c.Item2 }),
                    rows,
                },
            },
        });
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private static async Task<WebApplication> StandInAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapPost("/v1/workspaces/{id}/query", handler);
        await app.StartAsync();
        return app;
    }
}
