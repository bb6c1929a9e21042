using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Rollout.Core.Health;

namespace Rollout.Orchestration;

/// <summary>What one health check of a live rollout found and did.</summary>
/// <param name="Feature">Feature key.</param>
/// <param name="Action">skipped (nothing to judge), healthy, insufficient, or rolled-back (a breach, and the rollback was accepted), or refused (the rollout refused it).</param>
/// <param name="Detail">Why, with the figures.</param>
/// <param name="Verdict">The verdict, when health was evaluated.</param>
public sealed record HealthCheck(string Feature, string Action, string Detail, VerdictView? Verdict);

/// <summary>
/// A second, independent health path beside the orchestration's own evaluations during bakes: reads the
/// feature's health window from a source (in Azure, Application Insights through Log Analytics), evaluates it
/// with the core's budgets and, on a breach, sends the rollout a rollback command as the operator
/// <see cref="By"/>. Either path can stop a rollout; the orchestration records who did and why.
/// </summary>
/// <param name="control">The rollout control.</param>
/// <param name="source">The health window source.</param>
/// <param name="time">Clock.</param>
/// <param name="logger">Logger.</param>
public sealed partial class RolloutHealthMonitor(RolloutControl control, IHealthWindowSource source, TimeProvider time, ILogger<RolloutHealthMonitor> logger)
{
    /// <summary>The operator name of the monitor's commands.</summary>
    public const string By = "health-monitor";

    /// <summary>Checks one feature's live rollout over the last <paramref name="window"/>.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="budgets">The rollout's budgets.</param>
    /// <param name="window">How far back to look.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<HealthCheck> CheckAsync(string feature, HealthBudgets budgets, TimeSpan window, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(budgets);
        if (window <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, "The health monitor's window must be positive.");
        }

        var status = await control.GetStatusAsync(feature, cancellationToken).ConfigureAwait(false);
        if (status is null || status.RuntimeStatus is not (OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending) || status.View is not { } view)
        {
            return Done(new HealthCheck(feature, "skipped", status is null ? "no rollout was started" : $"the rollout is not running ({status.RuntimeStatus})", null));
        }

        if (view.ExposurePercent == 0 && view.Reads == Core.Spec.ReadMode.Legacy)
        {
            return Done(new HealthCheck(feature, "skipped", $"nothing is exposed in phase '{view.Phase}'", null));
        }

        var to = time.GetUtcNow();
        var health = await source.QueryWindowAsync(feature, to - window, to, cancellationToken).ConfigureAwait(false);
        var verdict = HealthEvaluator.Evaluate(budgets, health, candidateExposed: view.ExposurePercent > 0);
        var seen = VerdictView.From(verdict, to, view.Phase, final: false);
        if (verdict is not HealthVerdict.Breach breach)
        {
            return Done(new HealthCheck(feature, verdict is HealthVerdict.Healthy ? "healthy" : "insufficient", seen.Summary, seen));
        }

        var reasons = string.Join("; ", breach.Breaches.Select(b => b.Detail));
        var answer = await control.SendAsync(feature, "rollback", By, $"budget broken over the last {window.TotalMinutes:0.#} min: {reasons}", cancellationToken: cancellationToken).ConfigureAwait(false);
        return Done(new HealthCheck(feature, answer.Accepted ? "rolled-back" : "refused", $"{reasons} → {answer.Message}", seen));
    }

    private HealthCheck Done(HealthCheck check)
    {
        LogCheck(logger, check.Feature, check.Action, check.Detail);
        return check;
    }

    [LoggerMessage(3010, LogLevel.Information, "Health monitor, rollout {Feature}: {Action}: {Detail}")]
    private static partial void LogCheck(ILogger logger, string feature, string action, string detail);
}
