using System.ComponentModel.DataAnnotations;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rollout.Core.DataPath;
using Rollout.Core.Health;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Orchestration;

namespace Rollout.Functions;

/// <summary>Settings of the timer functions (section <c>Rollout:Timers</c>); the schedules are app settings of their own (see the README).</summary>
public sealed class RolloutTimerOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "Rollout:Timers";

    /// <summary>
    /// How long one change-feed invocation keeps draining (no batch starts after it). At most 9 min, under the
    /// 10 min <c>functionTimeout</c> of host.json.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:09:00", ErrorMessage = "Rollout:Timers:ChangeFeedBudget must be between 1 s and 9 min: a drain may run one batch past it, and host.json's functionTimeout is 10 min.")]
    public TimeSpan ChangeFeedBudget { get; set; } = TimeSpan.FromMinutes(4);

    /// <summary>
    /// Failed attempts of the change feed at one checkpoint before its batch is applied change by change and the changes
    /// the target still refuses are dead-lettered (the Azure SQL trigger binding's retry limit, 5 by default there too).
    /// </summary>
    [Range(1, 100, ErrorMessage = "Rollout:Timers:ChangeFeedMaxAttempts must be between 1 and 100.")]
    public int ChangeFeedMaxAttempts { get; set; } = DualWriteOptions.DefaultMaxAttempts;

    /// <summary>How far back the health monitor looks.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00", ErrorMessage = "Rollout:Timers:HealthWindow must be between 10 s and 1 day.")]
    public TimeSpan HealthWindow { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// The timer functions: the dual-write processor's change feed, the scheduled reconciliation and the health
/// monitor. Thin: each calls a class of the referenced projects; all three do nothing (and say so) when the
/// app has no feature wired.
/// </summary>
/// <param name="services">The app's services.</param>
/// <param name="options">Timer settings.</param>
/// <param name="logger">Logger.</param>
public sealed partial class RolloutTimers(IServiceProvider services, RolloutTimerOptions options, ILogger<RolloutTimers> logger)
{
    /// <summary>App setting with the change feed's NCRONTAB schedule.</summary>
    public const string ChangeFeedSchedule = "%RolloutChangeFeedSchedule%";

    /// <summary>App setting with the scheduled reconciliation's NCRONTAB schedule.</summary>
    public const string ReconcileSchedule = "%RolloutReconcileSchedule%";

    /// <summary>App setting with the health monitor's NCRONTAB schedule.</summary>
    public const string HealthMonitorSchedule = "%RolloutHealthMonitorSchedule%";

    /// <summary>
    /// Drains the source's change feed into the target under the feed's lease: scaled-out instances never
    /// process the same feed at once (the one without the lease returns at once). Keeps going while changes
    /// remain, within <see cref="RolloutTimerOptions.ChangeFeedBudget"/>. Then counts the feature's open dead letters
    /// (one query) for the <c>rollout.dualwrite.dead_letters.open</c> gauge, which the dead-letter alert watches.
    /// </summary>
    /// <param name="timer">Timer information.</param>
    /// <param name="cancellationToken">Host shutdown.</param>
    [Function("DrainChangeFeed")]
    public Task DrainChangeFeedAsync([TimerTrigger(ChangeFeedSchedule)] TimerInfo timer, CancellationToken cancellationToken) => DrainAsync(cancellationToken);

    internal async Task<BatchOutcome?> DrainAsync(CancellationToken cancellationToken)
    {
        if (services.GetService<DualWriteProcessor>() is not { } processor)
        {
            LogNotWired(logger, "DrainChangeFeed");
            return null;
        }

        try
        {
            var outcome = await processor.DrainAsync(options.ChangeFeedBudget, cancellationToken);
            LogDrained(logger, outcome.LeaseHeld, outcome.Read, outcome.Applied, outcome.Stale, outcome.DeadLettered, outcome.Checkpoint);
            return outcome;
        }
        finally
        {
            // Also when the drain failed (an outage, a refused batch): the backlog gauge must not go quiet exactly when the
            // feed is in trouble. Its own failure is logged, never thrown over the drain's outcome or error.
            try
            {
                await processor.RecordOpenDeadLettersAsync(cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                LogDeadLettersNotCounted(logger, e);
            }
        }
    }

    /// <summary>Reconciles the feature's stores while its rollout is live (the source wins; see the audit trail).</summary>
    /// <param name="timer">Timer information.</param>
    /// <param name="client">The Durable client.</param>
    /// <param name="cancellationToken">Host shutdown.</param>
    [Function("ScheduledReconciliation")]
    public Task ReconcileAsync([TimerTrigger(ReconcileSchedule)] TimerInfo timer, [DurableClient] DurableTaskClient client, CancellationToken cancellationToken) =>
        ReconcileAsync(client, cancellationToken);

    internal async Task<ReconciliationOutcome?> ReconcileAsync(DurableTaskClient client, CancellationToken cancellationToken)
    {
        if (services.GetService<RolloutSpec>() is not { } spec || services.GetService<IReconciliationTrigger>() is not { } trigger)
        {
            LogNotWired(logger, "ScheduledReconciliation");
            return null;
        }

        var status = await new RolloutControl(client).GetStatusAsync(spec.Feature, cancellationToken);
        if (status?.RuntimeStatus is not (OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended))
        {
            LogNoLiveRollout(logger, spec.Feature);
            return null;
        }

        var outcome = await trigger.TriggerAsync(spec.Feature, "scheduled", cancellationToken);
        LogReconciled(logger, spec.Feature, outcome.Summary);
        return outcome;
    }

    /// <summary>
    /// Evaluates the live rollout's health from the configured source (Application Insights in Azure) and rolls
    /// it back on a breach; the orchestration also evaluates health itself during bakes.
    /// </summary>
    /// <param name="timer">Timer information.</param>
    /// <param name="client">The Durable client.</param>
    /// <param name="cancellationToken">Host shutdown.</param>
    [Function("HealthMonitor")]
    public Task MonitorHealthAsync([TimerTrigger(HealthMonitorSchedule)] TimerInfo timer, [DurableClient] DurableTaskClient client, CancellationToken cancellationToken) =>
        MonitorHealthAsync(client, cancellationToken);

    internal async Task<HealthCheck?> MonitorHealthAsync(DurableTaskClient client, CancellationToken cancellationToken)
    {
        if (services.GetService<RolloutSpec>() is not { } spec || services.GetService<IHealthWindowSource>() is not { } source)
        {
            LogNotWired(logger, "HealthMonitor");
            return null;
        }

        var monitor = new RolloutHealthMonitor(
            new RolloutControl(client),
            source,
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<ILogger<RolloutHealthMonitor>>());
        return await monitor.CheckAsync(spec.Feature, HealthBudgets.From(spec.Budgets), options.HealthWindow, cancellationToken);
    }

    [LoggerMessage(4000, LogLevel.Warning, "{Function}: no feature is wired in this app (set Rollout:SpecPath); nothing to do")]
    private static partial void LogNotWired(ILogger logger, string function);

    [LoggerMessage(4001, LogLevel.Information, "Change feed drained (lease held: {LeaseHeld}): {Read} read, {Applied} applied, {Stale} stale, {DeadLettered} dead-lettered; checkpoint {Checkpoint}")]
    private static partial void LogDrained(ILogger logger, bool leaseHeld, int read, int applied, int stale, int deadLettered, long checkpoint);

    [LoggerMessage(4009, LogLevel.Warning, "Open dead letters could not be counted; the backlog gauge keeps its last count until it ages out")]
    private static partial void LogDeadLettersNotCounted(ILogger logger, Exception exception);

    [LoggerMessage(4002, LogLevel.Information, "Scheduled reconciliation of {Feature}: no live rollout, skipped")]
    private static partial void LogNoLiveRollout(ILogger logger, string feature);

    [LoggerMessage(4003, LogLevel.Information, "Scheduled reconciliation of {Feature}: {Summary}")]
    private static partial void LogReconciled(ILogger logger, string feature, string summary);
}
