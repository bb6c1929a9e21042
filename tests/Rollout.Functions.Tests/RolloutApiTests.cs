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

        var result = await Api(h).StartAsync(Request(spec), h.Client, default);

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

        var started = Assert.IsType<AcceptedResult>(await Api(h).StartAsync(Request(json), h.Client, default));
        var again = await Api(h).StartAsync(Request(json), h.Client, default);

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
        AssertProblem(await Api(h).CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "orders-v2", "explode", default), 404);
        AssertProblem(await Api(h).CommandAsync(Request("""{ "comment": "who?" }"""), h.Client, "orders-v2", "pause", default), 400);
        AssertProblem(await Api(h).CommandAsync(Request("{ not json"), h.Client, "orders-v2", "pause", default), 400);
        AssertProblem(await Api(h).CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "nothing-here", "pause", default), 404);
        var refused = AssertProblem(await Api(h).CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "orders-v2", "resume", default), 409);
        Assert.Equal("the rollout is not paused", refused.Detail);

        var paused = Assert.IsType<OkObjectResult>(await Api(h).CommandAsync(Request("""{ "by": "lea", "comment": "lunch" }"""), h.Client, "orders-v2", "pause", default));
        Assert.Equal("pause by lea (lunch)", JsonSerializer.SerializeToElement(paused.Value, Web).GetProperty("message").GetString());
        var rolledBack = Assert.IsType<OkObjectResult>(await Api(h).CommandAsync(Request("""{ "by": "lea" }"""), h.Client, "orders-v2", "rollback", default));
        Assert.True(JsonSerializer.SerializeToElement(rolledBack.Value, Web).GetProperty("accepted").GetBoolean());
        Assert.Equal("rolledBack", (await h.WaitForEndAsync()).Result!.Outcome);

        // The rollback's reconciliation is in the audit.
        var audit = Assert.IsType<OkObjectResult>(await Api(h).AuditAsync(Request(string.Empty), "orders-v2", default));
        var runs = JsonSerializer.SerializeToElement(audit.Value, Web).EnumerateArray().ToArray();
        Assert.Single(runs);
        Assert.Equal(40, runs[0].GetProperty("repaired").GetInt64());
        var keys = Assert.IsType<OkObjectResult>(await Api(h).AuditAsync(Request(string.Empty, "?run=" + runs[0].GetProperty("id").GetInt64()), "orders-v2", default));
        Assert.Equal(40, JsonSerializer.SerializeToElement(keys.Value, Web).GetArrayLength());
        AssertProblem(await new RolloutApi().AuditAsync(Request(string.Empty), "orders-v2", default), 503);
    }

    [Fact]
    public async Task The_audit_answers_only_for_the_served_feature_and_its_own_runs()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec());
        var run = (await h.Rollout.Reconciler().RunAsync(h.Rollout.ReconcileOptions(Rollout.Core.Reconciliation.ReconcileDepth.Quick), null, default)).Id;
        // A run of another feature in the same audit store.
        var foreign = await h.Rollout.Audit.StartRunAsync(new Rollout.Core.Reconciliation.ReconcileRun(0, "customers-v2", Rollout.Core.Reconciliation.ReconcileDepth.Quick,
            RepairMode.Report, DateTimeOffset.UtcNow, null, null, null, null, Rollout.Core.Reconciliation.ReconcileStatus.Running, new Rollout.Core.Reconciliation.ReconcileCounts()), default);

        var own = await Api(h).AuditAsync(Request(string.Empty, "?run=" + run), "orders-v2", default);
        var unknownFeature = AssertProblem(await Api(h).AuditAsync(Request(string.Empty), "customers-v2", default), 404);
        var otherFeaturesRun = AssertProblem(await Api(h).AuditAsync(Request(string.Empty, "?run=" + foreign), "orders-v2", default), 404);
        var noSuchRun = AssertProblem(await Api(h).AuditAsync(Request(string.Empty, "?run=987654"), "orders-v2", default), 404);

        Assert.Equal(40, JsonSerializer.SerializeToElement(Assert.IsType<OkObjectResult>(own).Value, Web).GetArrayLength());
        Assert.Contains("serves 'orders-v2' only", unknownFeature.Detail, StringComparison.Ordinal);
        Assert.Contains($"'orders-v2' has no reconciliation run {foreign}", otherFeaturesRun.Detail, StringComparison.Ordinal);
        Assert.Contains("no reconciliation run 987654", noSuchRun.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_spec_for_another_feature_or_data_path_is_refused_with_409_naming_both_and_an_unwired_app_answers_503()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        string Json(RolloutSpec spec) => JsonSerializer.Serialize(spec, RolloutSpecJsonContext.Default.RolloutSpec);
        var otherFeature = h.Spec with { Feature = "customers-v2" };
        var otherContainer = h.Spec with { Target = h.Spec.Target with { Container = "orders-archive" } };
        var otherMapping = h.Spec with { Mapping = h.Spec.Mapping.Where(m => m.Key != "status").ToDictionary() };

        var feature = AssertProblem(await Api(h).StartAsync(Request(Json(otherFeature)), h.Client, default), 409);
        var container = AssertProblem(await Api(h).StartAsync(Request(Json(otherContainer)), h.Client, default), 409);
        var mapping = AssertProblem(await Api(h).StartAsync(Request(Json(otherMapping)), h.Client, default), 409);
        var unwired = AssertProblem(await new RolloutApi().StartAsync(Request(Json(h.Spec)), h.Client, default), 503);
        // Phases and budgets are the rollout's own: the served data path with other phases starts.
        var samePathOtherPhases = h.Spec with { Phases = [new PhaseSpec { Name = "all-at-once", Exposure = 100, Bake = "PT60M" }] };
        var started = Assert.IsType<AcceptedResult>(await Api(h).StartAsync(Request(Json(samePathOtherPhases)), h.Client, default));

        Assert.Contains("serves 'orders-v2'", feature.Detail, StringComparison.Ordinal);
        Assert.Contains("'customers-v2'", feature.Detail, StringComparison.Ordinal);
        Assert.Contains("$.feature: served \"orders-v2\", posted \"customers-v2\"", feature.Detail, StringComparison.Ordinal);
        Assert.Equal(("orders-v2", "customers-v2"), (feature.Extensions["served"], feature.Extensions["posted"]));
        Assert.Contains("$.target.container: served \"orders\", posted \"orders-archive\"", container.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("$.feature", container.Detail, StringComparison.Ordinal);
        var differences = JsonSerializer.SerializeToElement(mapping.Extensions["differences"], Web).EnumerateArray().ToArray();
        Assert.Equal("$.mapping.status", Assert.Single(differences).GetProperty("path").GetString());
        Assert.Equal("(none)", differences[0].GetProperty("posted").GetString());
        Assert.Contains("Rollout:SpecPath", unwired.Detail, StringComparison.Ordinal);
        Assert.Null(await h.Control.GetStatusAsync("customers-v2"));
        Assert.Equal("/api/rollouts/orders-v2", started.Location);
    }

    [Theory]
    [InlineData("Orders", "[dbo].[Orders]")]
    [InlineData("dbo.Orders", "[dbo].[Orders]")]
    [InlineData("sales.Orders", "[sales].[Orders]")]
    [InlineData("not a table", "not a table")]
    public void The_api_compares_source_tables_as_azure_sql_names_them(string table, string named) =>
        Assert.Equal(named, RolloutApi.SqlServerTable(table));

    [Fact]
    public async Task Approve_and_reject_are_routed_through_the_api_to_the_waiting_approval()
    {
        static RolloutSpec WithApproval() => RolloutHarness.OrdersSpec(
            [
                new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT30S", Approval = new ApprovalSpec { Timeout = "PT60M", OnTimeout = TimeoutAction.Halt } },
                new PhaseSpec { Name = "full", Exposure = 100, Bake = "PT30S" },
            ],
            b => b.EvaluateEvery = "PT30S");

        await using (var h = await RolloutHarness.StartAsync(WithApproval()))
        {
            await h.StartRolloutAsync();
            var waiting = await h.WaitForStatusAsync(s => s.Status == "awaitingApproval" && s.LastVerdict?.Kind == "healthy", "waiting for approval on a healthy verdict");

            var blind = AssertProblem(await Api(h).CommandAsync(Request("""{ "by": "dana" }"""), h.Client, "orders-v2", "approve", default), 409);
            var approved = Assert.IsType<OkObjectResult>(await Api(h).CommandAsync(Request($$"""{ "by": "dana", "comment": "looks fine", "snapshot": {{waiting.Snapshot}} }"""), h.Client, "orders-v2", "approve", default));

            Assert.Contains("must name the status snapshot", blind.Detail, StringComparison.Ordinal);
            var answer = JsonSerializer.SerializeToElement(approved.Value, Web);
            Assert.True(answer.GetProperty("accepted").GetBoolean());
            Assert.Equal($"approved by dana (looks fine) on snapshot {waiting.Snapshot}", answer.GetProperty("message").GetString());
            Assert.Equal("completed", (await h.WaitForEndAsync()).Result!.Outcome);
        }

        await using (var h = await RolloutHarness.StartAsync(WithApproval()))
        {
            await h.StartRolloutAsync();
            await h.WaitForStatusAsync(s => s.Status == "awaitingApproval", "waiting for approval");

            var rejected = Assert.IsType<OkObjectResult>(await Api(h).CommandAsync(Request("""{ "by": "frank", "comment": "latency looks odd" }"""), h.Client, "orders-v2", "reject", default));

            Assert.True(JsonSerializer.SerializeToElement(rejected.Value, Web).GetProperty("accepted").GetBoolean());
            var end = await h.WaitForEndAsync();
            Assert.Equal("rolledBack", end.Result!.Outcome);
            Assert.Equal(["approval of phase 'canary' rejected by frank: latency looks odd"], end.Result.Reasons);
        }
    }

    [Fact]
    public async Task A_command_the_rollout_has_not_acknowledged_in_time_is_202_delivered_with_the_status_url_and_is_answered_later()
    {
        await using var h = await RolloutHarness.StartAsync(RolloutHarness.OrdersSpec([new PhaseSpec { Name = "canary", Exposure = 5, Bake = "PT60M" }]));
        await h.StartRolloutAsync();
        await h.WaitForStatusAsync(s => s.Status == "baking", "baking");
        var impatient = new RolloutApi(h.Spec, h.Rollout.Audit) { CommandTimeout = TimeSpan.FromSeconds(1) };
        // A suspended orchestration is live but runs nothing: the event waits in its queue, unanswered.
        await h.Client.SuspendInstanceAsync(Rollout.Orchestration.RolloutOrchestrator.InstanceIdFor(h.Feature), "test: the rollout does not run for a while");

        var result = Assert.IsType<ObjectResult>(await impatient.CommandAsync(Request("""{ "by": "lea", "comment": "lunch" }"""), h.Client, "orders-v2", "pause", default));
        await h.Client.ResumeInstanceAsync(Rollout.Orchestration.RolloutOrchestrator.InstanceIdFor(h.Feature), "test: runs again");

        Assert.Equal(202, result.StatusCode);
        Assert.Contains("application/problem+json", result.ContentTypes);
        var problem = Assert.IsType<ProblemDetails>(result.Value);
        Assert.Equal("'pause' was delivered but not yet acknowledged", problem.Title);
        Assert.Contains("did not answer 'pause'", problem.Detail, StringComparison.Ordinal);
        Assert.Equal("/api/rollouts/orders-v2", problem.Extensions["statusUrl"]);
        // Delivered: the rollout answers it when it runs again.
        for (var i = 0; i < 200 && (await h.Control.GetStatusAsync(h.Feature))!.RuntimeStatus == Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Suspended; i++)
        {
            await Task.Delay(25);
        }

        var paused = await h.WaitForStatusAsync(s => s.Status == "paused", "the delivered pause to be applied");
        Assert.Contains(paused.RecentCommands.Append(paused.LastCommand), c => c is { Command: "pause", Accepted: true } && c.Message == "pause by lea (lunch)");
    }

    private static RolloutApi Api(RolloutHarness h) => new(h.Spec, h.Rollout.Audit);

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
