using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Orchestration;

namespace Rollout.Functions;

/// <summary>
/// The HTTP API (auth level Function, JSON, errors as RFC 7807 problem details): start a rollout, read its status,
/// send operator commands, read the reconciliation audit. Thin: everything goes through <see cref="RolloutControl"/>.
/// </summary>
/// <param name="served">The spec of the one feature this app serves (<c>Rollout:SpecPath</c>), when one is wired.</param>
/// <param name="audit">The reconciliation audit store, when one is configured.</param>
public sealed class RolloutApi(RolloutSpec? served = null, IReconcileAuditStore? audit = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>How long a command waits for the rollout to acknowledge it before answering 202.</summary>
    internal TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(20);

    private static readonly string[] Commands =
        [RolloutEvents.Approve, RolloutEvents.Reject, RolloutEvents.Pause, RolloutEvents.Resume, RolloutEvents.Rollback, RolloutEvents.SkipBake];

    /// <summary>
    /// POST /api/rollouts: validates the spec in the body and starts its rollout. The app serves one feature: a spec whose
    /// data path (feature, salt, source table and key, target container and partition key, mapping) differs from the
    /// served one is refused with 409, naming each difference; with no spec wired, 503.
    /// </summary>
    /// <param name="request">The request; its body is a rollout spec.</param>
    /// <param name="client">The Durable Task client.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    [Function("StartRollout")]
    public async Task<IActionResult> StartAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "rollouts")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (served is null)
        {
            return Result(NotWired());
        }

        using var reader = new StreamReader(request.Body);
        var loaded = RolloutSpecLoader.Load(await reader.ReadToEndAsync(cancellationToken));
        if (loaded.Spec is not { } spec)
        {
            var invalid = Problem(StatusCodes.Status400BadRequest, "The rollout spec is not valid", $"{loaded.Problems.Count} problem(s); each names where it is and how to fix it.");
            invalid.Extensions["errors"] = loaded.Problems.Select(p => new { path = p.Path, message = p.Message, hint = p.Hint }).ToArray();
            return Result(invalid);
        }

        // 409 rather than 422: the spec is valid on its own; it conflicts with what this deployment is wired to serve.
        if (SpecDifferences.DataPath(served, spec, SqlServerTable) is { Count: > 0 } differences)
        {
            var other = Problem(StatusCodes.Status409Conflict, "This app serves another feature or data path",
                $"This app serves '{served.Feature}' ({served.Source.Table} -> {served.Target.Container}); the posted spec '{spec.Feature}' ({spec.Source.Table} -> {spec.Target.Container}) differs in "
                + string.Join("; ", differences.Select(d => $"{d.Path}: served {d.Served}, posted {d.Other}"))
                + ". Post the served spec (phases, budgets, reconciliation and gate settings may differ), or deploy an app whose Rollout:SpecPath is this spec.");
            other.Extensions["served"] = served.Feature;
            other.Extensions["posted"] = spec.Feature;
            other.Extensions["differences"] = differences.Select(d => new { path = d.Path, served = d.Served, posted = d.Other }).ToArray();
            return Result(other);
        }

        try
        {
            var instanceId = await new RolloutControl(client).StartAsync(RolloutInput.FromSpec(spec), cancellationToken);
            var status = StatusUrl(spec.Feature);
            return new AcceptedResult(status, new
            {
                feature = spec.Feature,
                instanceId,
                statusUrl = status,
                commandUrls = Commands.ToDictionary(c => c, c => $"{status}/{c}"),
            });
        }
        catch (RolloutAlreadyRunningException e)
        {
            return Result(Problem(StatusCodes.Status409Conflict, "A rollout of this feature is already live", e.Message));
        }
    }

    /// <summary>GET /api/rollouts: every rollout's status.</summary>
    /// <param name="request">The request.</param>
    /// <param name="client">The Durable Task client.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    [Function("ListRollouts")]
    public static async Task<IActionResult> ListAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "rollouts")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var rollouts = new List<object>();
        await foreach (var metadata in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = RolloutOrchestrator.InstanceIdFor(string.Empty), FetchInputsAndOutputs = true }).WithCancellation(cancellationToken))
        {
            var snapshot = RolloutSnapshot.From(metadata);
            rollouts.Add(new { runtimeStatus = snapshot.RuntimeStatus.ToString(), status = snapshot.View, result = snapshot.Result, failure = snapshot.Failure });
        }

        return new OkObjectResult(rollouts);
    }

    /// <summary>GET /api/rollouts/{feature}: phase, exposure, read mode, last verdict, waiting-for, history.</summary>
    /// <param name="request">The request.</param>
    /// <param name="client">The Durable Task client.</param>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    [Function("GetRollout")]
    public static async Task<IActionResult> GetAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "rollouts/{feature}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string feature,
        CancellationToken cancellationToken)
    {
        var snapshot = await new RolloutControl(client).GetStatusAsync(feature, cancellationToken);
        return snapshot is null
            ? Result(NotFound(feature))
            : new OkObjectResult(new { runtimeStatus = snapshot.RuntimeStatus.ToString(), status = snapshot.View, result = snapshot.Result, failure = snapshot.Failure });
    }

    /// <summary>POST /api/rollouts/{feature}/{command}: approve, reject, pause, resume, rollback or skip-bake, with who and why.</summary>
    /// <param name="request">The request; body <c>{ "by": "…", "comment": "…", "snapshot": 12 }</c>.</param>
    /// <param name="client">The Durable Task client.</param>
    /// <param name="feature">Feature key.</param>
    /// <param name="command">The command.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    [Function("CommandRollout")]
    public async Task<IActionResult> CommandAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "rollouts/{feature}/{command}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string feature,
        string command,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!Commands.Contains(command))
        {
            return Result(Problem(StatusCodes.Status404NotFound, "Unknown command", $"'{command}' is not a command; use one of: {string.Join(", ", Commands)}."));
        }

        CommandBody? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<CommandBody>(request.Body, Json, cancellationToken);
        }
        catch (JsonException e)
        {
            return Result(Problem(StatusCodes.Status400BadRequest, "The command body is not valid JSON", $"{e.Message} Send {{ \"by\": \"name\", \"comment\": \"optional\", \"snapshot\": 12 }}."));
        }

        if (string.IsNullOrWhiteSpace(body?.By))
        {
            return Result(Problem(StatusCodes.Status400BadRequest, "Who sends the command is missing", "Set \"by\" in the body: the history records who approved, paused or rolled back."));
        }

        var control = new RolloutControl(client);
        var status = await control.GetStatusAsync(feature, cancellationToken);
        if (status is null)
        {
            return Result(NotFound(feature));
        }

        CommandAnswer answer;
        try
        {
            answer = await control.SendAsync(feature, command, body.By, body.Comment, body.Snapshot, CommandTimeout, cancellationToken);
        }
        catch (TimeoutException e)
        {
            // Delivered (the event is raised; the rollout answers it when it next runs), just not acknowledged yet.
            var statusUrl = StatusUrl(feature);
            var pending = Problem(StatusCodes.Status202Accepted, $"'{command}' was delivered but not yet acknowledged", e.Message + $" Its answer will be in {statusUrl} (recentCommands).");
            pending.Extensions["statusUrl"] = statusUrl;
            return new ObjectResult(pending) { StatusCode = StatusCodes.Status202Accepted, ContentTypes = { "application/problem+json" } };
        }

        return answer.Accepted
            ? new OkObjectResult(answer)
            : Result(Problem(StatusCodes.Status409Conflict, $"The rollout refused '{command}'", answer.Message));
    }

    /// <summary>GET /api/rollouts/{feature}/audit: reconciliation runs, and with <c>?run=ID</c> the keys of one run.</summary>
    /// <param name="request">The request.</param>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    [Function("GetAudit")]
    public async Task<IActionResult> AuditAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "rollouts/{feature}/audit")] HttpRequest request,
        string feature,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (audit is null || served is null)
        {
            return Result(Problem(StatusCodes.Status503ServiceUnavailable, "No audit store is configured", "Set Rollout:SpecPath (and Rollout:Sqlite:DataDirectory) so that the app has stores to read."));
        }

        if (!string.Equals(feature, served.Feature, StringComparison.Ordinal))
        {
            return Result(Problem(StatusCodes.Status404NotFound, "No such feature", $"This app serves '{served.Feature}' only; there is no audit of '{feature}' here."));
        }

        if (request.Query.TryGetValue("run", out var run))
        {
            if (!long.TryParse(run, out var runId))
            {
                return Result(Problem(StatusCodes.Status400BadRequest, "The run id is not a number", $"'{run}' is not a run id; list the runs without ?run first."));
            }

            if (await audit.GetRunAsync(feature, runId, cancellationToken) is null)
            {
                return Result(Problem(StatusCodes.Status404NotFound, "No such run", $"'{feature}' has no reconciliation run {runId}; list its runs without ?run."));
            }

            var keys = await audit.ListKeysAsync(runId, cancellationToken);
            return new OkObjectResult(keys.Select(k => new { key = k.Key.Text, kind = k.Kind.ToString(), action = k.Action.ToString(), k.SourceVersion, k.TargetVersion, k.BeforeHash, k.AfterHash, k.At, k.Detail }));
        }

        var runs = await audit.ListRunsAsync(feature, 100, cancellationToken);
        return new OkObjectResult(runs.Select(r => new
        {
            r.Id, depth = r.Depth.ToString(), mode = r.Mode.ToString(), r.Started, r.Ended, status = r.Status.ToString(),
            r.Counts.Compared, r.Counts.Drifted, r.Counts.Missing, r.Counts.Extra, r.Counts.Divergent, r.Counts.Stale, r.Counts.TargetAhead, r.Counts.Untranslatable, r.Counts.Repaired, r.Counts.Flagged,
        }));
    }

    private static string StatusUrl(string feature) => $"/api/rollouts/{Uri.EscapeDataString(feature)}";

    private static ProblemDetails NotWired() =>
        Problem(StatusCodes.Status503ServiceUnavailable, "This app serves no feature",
            "No rollout spec is wired (Rollout:SpecPath is not set), so there are no stores for a rollout to act on. Set Rollout:SpecPath to the spec of the feature this app serves (for example specs/orders.rollout.json) and restart the app.");

    private static ProblemDetails NotFound(string feature) =>
        Problem(StatusCodes.Status404NotFound, "No such rollout", $"No rollout of '{feature}' was ever started; start one with POST /api/rollouts.");

    private static ProblemDetails Problem(int status, string title, string detail) => new() { Status = status, Title = title, Detail = detail, Type = $"https://httpstatuses.io/{status}" };

    private static ObjectResult Result(ProblemDetails problem) => new(problem) { StatusCode = problem.Status, ContentTypes = { "application/problem+json" } };

    /// <summary>A table as Azure SQL names it (<c>Orders</c> is <c>[dbo].[Orders]</c>); a name it cannot parse as written.</summary>
    internal static string SqlServerTable(string name)
    {
        try
        {
            return Rollout.Storage.SqlServer.SqlServerTableName.Parse(name).Quoted;
        }
        catch (ArgumentException)
        {
            return name;
        }
    }

    /// <summary>The body of an operator command.</summary>
    /// <param name="By">Who.</param>
    /// <param name="Comment">Why.</param>
    /// <param name="Snapshot">For approve: the status snapshot looked at.</param>
    internal sealed record CommandBody(string? By, string? Comment, long? Snapshot);
}
