using Microsoft.Extensions.Logging;

namespace Rollout.Orchestration;

/// <summary>Log messages of the orchestration (event ids 3000–3099).</summary>
internal static partial class Log
{
    [LoggerMessage(3000, LogLevel.Information, "Rollout {Feature}: phase {Phase} applied, exposure {Exposure}, reads {Reads} (generation {Generation}): {Reason}")]
    public static partial void ExposureApplied(ILogger logger, string feature, string phase, string exposure, string reads, long generation, string reason);

    [LoggerMessage(3001, LogLevel.Information, "Rollout {Feature}: health in phase {Phase}: {Verdict} ({Figures})")]
    public static partial void HealthEvaluated(ILogger logger, string feature, string phase, string verdict, string figures);

    [LoggerMessage(3002, LogLevel.Information, "Rollout {Feature}: reconciliation after rollback: {Summary}")]
    public static partial void ReconciliationTriggered(ILogger logger, string feature, string summary);

    [LoggerMessage(3003, LogLevel.Information, "Rollout {Feature}: {Kind} in phase {Phase}: {Detail}")]
    public static partial void Transition(ILogger logger, string feature, string kind, string phase, string detail);

    [LoggerMessage(3004, LogLevel.Warning, "Rollout {Feature}: command {Command} by {By} refused: {Reason}")]
    public static partial void CommandRefused(ILogger logger, string feature, string command, string by, string reason);

    [LoggerMessage(3005, LogLevel.Warning, "Rollout {Feature} ended {Outcome}: {Reasons}")]
    public static partial void Ended(ILogger logger, string feature, string outcome, string reasons);
}
