using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Rollout.Core.Spec;
using Rollout.Orchestration.Tests;

namespace Rollout.Functions.Tests;

/// <summary>
/// The HTTP functions called as classes with a real <c>DurableTaskClient</c> (the Durable Task SDK, in-memory
/// backend, in process) over real SQLite stores: status codes, problem details, command routing.
/// </summary>
public sealed class RolloutApiTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    [Fact]
    public async Task An_invalid_spec_is_refused_with_400_and_every_problem_with_its_path()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        var spec = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", "orders.rollout.json"))
            .Replace("\"dbo.Orders\"", "\"Orders; DROP TABLE x\"", StringComparison.Ordinal)
            .Replace("\"exposure\": 25", "\"exposure\": 250", StringComparison.Ordinal);

        var result = await RolloutApi.StartAsync(Request(spec), h.Client, default);

        var problem = AssertProblem(result, 400);
        var errors = JsonSerializer.SerializeToElement(problem.Extensions["errors"], Web);
        var paths = errors.EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToArray();
        Assert.Contains("$.source.table", paths);
        Assert.Contains("$.phases[2].exposure", paths);
        Assert.All(errors.EnumerateArray(), e => Assert.False(string.IsNullOrEmpty(e.GetProperty("hint").GetString())));
    }

    [Fact]
    public async Task A_valid_spec_starts_with_202_and_the_urls_and_a_second_start_is_409()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        var json = JsonSerializer.Serialize(h.Spec, RolloutSpecJsonContext.Default.RolloutSpec);

        var started = Assert.IsType<AcceptedResult>(await RolloutApi.StartAsync(Request(json), h.Client, default));
        var again = await RolloutApi.StartAsync(Request(json), h.Client, default);

        Assert.Equal("/api/rollouts/orders-v2", started.Location);
        var body = JsonSerializer.SerializeToElement(started.Value, Web);
        Assert.Equal("rollout:orders-v2", body.GetProperty("instanceId").GetString());
        Assert.Equal("/api/rollouts/orders-v2/approve", body.GetProperty("commandUrls").GetProperty("approve").GetString());
        Assert.Contains("already live", AssertProblem(again, 409).Detail, StringComparison.Ordinal);

        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");
        var status = Assert.IsType<OkObjectResult>(await RolloutApi.GetAsync(Request(string.Empty), h.Client, "orders-v2", default));
        var view = JsonSerializer.SerializeToElement(status.Value, Web);
        Assert.Equal("baking", view.GetProperty("status").GetProperty("status").GetString());
        Assert.Equal(5m, view.GetProperty("status").GetProperty("exposurePercent").GetDecimal());
        var list = Assert.IsType<OkObjectResult>(await RolloutApi.ListAsync(Request(string.Empty), h.Client, default));
        Assert.Single(JsonSerializer.SerializeToElement(list.Value, Web).EnumerateArray());
    }

    [Fact]
    public async Task Commands_are_routed_and_answered_200_accepted_409_refused_404_unknown_400_without_who()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");

        AssertProblem(await RolloutApi.GetAsync(Request(string.Empty), h.Client, "nothing-here", default), 404);
        AssertProblem(await RolloutApi.CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "orders-v2", "explode", default), 404);
        AssertProblem(await RolloutApi.CommandAsync(Request("""{ "comment": "who?" }"""), h.Client, "orders-v2", "pause", default), 400);
        AssertProblem(await RolloutApi.CommandAsync(Request("{ not json"), h.Client, "orders-v2", "pause", default), 400);
        AssertProblem(await RolloutApi.CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "nothing-here", "pause", default), 404);
        var refused = AssertProblem(await RolloutApi.CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "orders-v2", "resume", default), 409);
        Assert.Equal("the rollout is not paused", refused.Detail);

        var paused = Assert.IsType<OkObjectResult>(await RolloutApi.CommandAsync(Request("""{ "by": "lea", "comment": "lunch" }"""), h.Client, "orders-v2", "pause", default));
        Assert.Equal("pause by lea (lunch)", JsonSerializer.SerializeToElement(paused.Value, Web).GetProperty("message").GetString());
        var rolledBack = Assert.IsType<OkObjectResult>(await RolloutApi.CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "orders-v2", "rollback", default));
        Assert.True(JsonSerializer.SerializeToElement(rolledBack.Value, Web).GetProperty("accepted").GetBoolean());
        Assert.Equal("rolledBack", (await h.WaitForEndAsync()).Result!.Outcome);

        // The rollback's reconciliation is in the audit.
        var audit = Assert.IsType<OkObjectResult>(await new RolloutApi(h.Rollout.Audit).AuditAsync(Request(string.Empty), "orders-v2", default));
        var runs = JsonSerializer.SerializeToElement(audit.Value, Web).EnumerateArray().ToArray();
        Assert.Single(runs);
        Assert.Equal(40, runs[0].GetProperty("repaired").GetInt64());
        var keys = Assert.IsType<OkObjectResult>(await new RolloutApi(h.Rollout.Audit).AuditAsync(Request(string.Empty, "?run=" + runs[0].GetProperty("id").GetInt64()), "orders-v2", default));
        Assert.Equal(40, JsonSerializer.SerializeToElement(keys.Value, Web).GetArrayLength());
        AssertProblem(await new RolloutApi().AuditAsync(Request(string.Empty), "orders-v2", default), 503);
    }

    private static HttpRequest Request(string body, string query = "")
    {
        var context = new DefaultHttpContext();
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(body));
        context.Request.QueryString = new QueryString(query.Length == 0 ? null : query);
        return context.Request;
    }

    private static ProblemDetails AssertProblem(IActionResult result, int status)
    {
        var objectResult = Assert.IsType<ObjectResult>(result);
        Assert.Equal(status, objectResult.StatusCode);
        Assert.Contains("application/problem+json", objectResult.ContentTypes);
        var problem = Assert.IsType<ProblemDetails>(objectResult.Value);
        Assert.Equal(status, problem.Status);
        Assert.False(string.IsNullOrWhiteSpace(problem.Detail));
        return problem;
    }
}
