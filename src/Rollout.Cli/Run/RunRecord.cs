using System.Text.Json;
using System.Text.Json.Serialization;
using Rollout.Core.Plan;

namespace Rollout.Cli.Run;

/// <summary>One sample of the live figures (what the live display shows, kept for the report).</summary>
/// <param name="At">When.</param>
/// <param name="Phase">Phase in force.</param>
/// <param name="ExposurePercent">Exposure in force.</param>
/// <param name="Reads">Read mode in force.</param>
/// <param name="LegacyRps">Requests per second served by the legacy path.</param>
/// <param name="NewRps">Requests per second on the new path.</param>
/// <param name="LegacyErrorRate">Error rate of the legacy path.</param>
/// <param name="NewErrorRate">Error rate of the new path.</param>
/// <param name="LegacyP95Ms">p95 latency of the legacy path.</param>
/// <param name="NewP95Ms">p95 latency of the new path.</param>
/// <param name="FeedLag">Changes committed on the source and not yet applied to the target.</param>
/// <param name="DriftRate">Drift (shadow comparisons and the latest reconciliation) in the window.</param>
internal sealed record TimelinePoint(
    DateTimeOffset At,
    string Phase,
    decimal ExposurePercent,
    string Reads,
    double LegacyRps,
    double NewRps,
    double LegacyErrorRate,
    double NewErrorRate,
    double? LegacyP95Ms,
    double? NewP95Ms,
    long FeedLag,
    double DriftRate);

/// <summary>A reconciliation run, summarised for the report.</summary>
internal sealed record ReconcileSummary(long Id, DateTimeOffset Started, DateTimeOffset? Ended, string Depth, string Mode, long Compared, long Drifted, long Repaired, long Flagged, string Status);

/// <summary>What one <c>rollout run</c> did: written to <c>run.json</c> in the data folder, read by <c>rollout report</c>.</summary>
internal sealed record RunRecord(
    string Feature,
    string SpecFile,
    DateTimeOffset StartedAt,
    DateTimeOffset EndedAt,
    string Outcome,
    IReadOnlyList<string> Reasons,
    double Speed,
    int RequestsPerSecond,
    int EffectiveMinSamples,
    IReadOnlyList<string> Injections,
    IReadOnlyList<TimelinePoint> Timeline,
    IReadOnlyList<RolloutJournalEntry> Journal,
    IReadOnlyList<ReconcileSummary> Reconciliations,
    long Reads,
    long Writes,
    long FellBack,
    long Tampered,
    long SourceRows,
    bool StoresAgree,
    string StoresCheck)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public const string FileName = "run.json";

    public static async Task<RunRecord?> LoadAsync(string folder, CancellationToken cancellationToken)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        await using var stream = File.OpenRead(path);
        return await JsonSerializer.DeserializeAsync<RunRecord>(stream, Json, cancellationToken);
    }

    public async Task SaveAsync(string folder, CancellationToken cancellationToken)
    {
        var path = Path.Combine(folder, FileName);
        var temp = path + ".tmp";
        await using (var stream = File.Create(temp))
        {
            await JsonSerializer.SerializeAsync(stream, this, Json, cancellationToken);
        }

        File.Move(temp, path, overwrite: true);
    }
}
