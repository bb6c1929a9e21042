using System.Globalization;
using System.Text.Json;
using Rollout.Core.Health;
using Rollout.Core.Spec;

namespace Rollout.Telemetry.AzureMonitor;

/// <summary>
/// The KQL that rebuilds a rollout's health window from what the rollout's OpenTelemetry instruments exported to
/// Application Insights (workspace-based tables), and the reading of its answer. Counts and errors come from the
/// <c>rollout.gate.decisions</c> counter (exact: metrics are not sampled); latencies from the gate's request spans
/// (<c>rollout.gate.read|write</c>, their <c>rollout.duration_ms</c> tag: the time the gate measured, weighted by
/// their sampling <c>ItemCount</c>), put in the buckets of
/// <see cref="LatencyHistogram"/> so that the core evaluates them exactly as it does the embedded store's;
/// drift from the shadow comparisons and reconciliation key counters. Every column has one type in every part
/// of the union (KQL's union keeps one column per name and type: an int and a long <c>bucket</c> would be two).
/// </summary>
internal static class LogAnalyticsHealthQuery
{
    /// <summary>The KQL for one feature and window. The feature key is validated, never spliced unchecked.</summary>
    /// <exception cref="ArgumentException">The feature is not a valid feature key.</exception>
    public static string Build(string feature, DateTimeOffset from, DateTimeOffset to)
    {
        if (!Identifiers.IsFeatureKey(feature))
        {
            throw new ArgumentException($"'{feature}' is not a feature key (lower-case letters, digits and inner dashes).", nameof(feature));
        }

        if (to <= from)
        {
            throw new ArgumentException($"The window ends ({to:O}) before it starts ({from:O}).", nameof(to));
        }

        // A feature key has no quote, backslash or newline (checked above), so it is a plain string literal.
        return string.Create(CultureInfo.InvariantCulture, $$"""
            let from_ = datetime({{from.UtcDateTime:O}});
            let to_ = datetime({{to.UtcDateTime:O}});
            let feature_ = "{{feature}}";
            let counts = AppMetrics
            | where TimeGenerated >= from_ and TimeGenerated < to_ and Name == "rollout.gate.decisions"
            | where tostring(Properties["rollout.feature"]) == feature_ and tostring(Properties["rollout.kind"]) in ("read", "write")
            | extend path = tostring(Properties["rollout.path"]), failed = tostring(Properties["rollout.outcome"]) in ("error", "timeout")
            | summarize n = tolong(sum(Sum)), errors = tolong(sumif(Sum, failed)) by path
            | extend part = "count", bucket = tolong(-1);
            let latency = AppDependencies
            | where TimeGenerated >= from_ and TimeGenerated < to_ and Name in ("rollout.gate.read", "rollout.gate.write")
            | where tostring(Properties["rollout.feature"]) == feature_ and tostring(Properties["rollout.kind"]) in ("read", "write")
            | extend path = tostring(Properties["rollout.path"]), ms = todouble(Properties["rollout.duration_ms"])
            | extend bucket = tolong(ceiling(log(max_of(iff(isnull(ms), DurationMs, ms), 0.05) / 0.05) / log(1.05)))
            | summarize n = tolong(sum(ItemCount)), errors = tolong(0) by path, bucket
            | extend part = "latency";
            let drift = AppMetrics
            | where TimeGenerated >= from_ and TimeGenerated < to_ and Name in ("rollout.reconcile.keys", "rollout.shadow.comparisons")
            | where tostring(Properties["rollout.feature"]) == feature_
            | extend compared = Name == "rollout.shadow.comparisons" or tostring(Properties["rollout.drift"]) == "none"
            | extend drifted = iff(Name == "rollout.shadow.comparisons", tostring(Properties["rollout.match"]) =~ "false", tostring(Properties["rollout.drift"]) != "none")
            | summarize n = tolong(sumif(Sum, compared)), errors = tolong(sumif(Sum, drifted))
            | extend part = "drift", path = "", bucket = tolong(-1);
            union counts, latency, drift
            | project part, path, bucket, n, errors
            """);
    }

    /// <summary>Reads the answer of the query API (<c>{"tables":[{"columns":[…],"rows":[…]}]}</c>) into a health window.</summary>
    /// <exception cref="FormatException">The answer is not a table with the query's columns.</exception>
    public static HealthWindow Read(JsonElement answer)
    {
        if (!answer.TryGetProperty("tables", out var tables) || tables.ValueKind != JsonValueKind.Array || tables.GetArrayLength() == 0)
        {
            throw new FormatException("The Log Analytics answer has no result table.");
        }

        var table = tables[0];
        var columns = table.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("name").GetString()).ToList();
        int Column(string name) => columns.IndexOf(name) is var i and >= 0 ? i : throw new FormatException($"The Log Analytics answer has no '{name}' column (it has: {string.Join(", ", columns)}).");
        int part = Column("part"), path = Column("path"), bucket = Column("bucket"), n = Column("n"), errors = Column("errors");

        var bucketCount = new LatencyHistogram().Counts.Count;
        var legacy = new PathAccumulator(bucketCount);
        var candidate = new PathAccumulator(bucketCount);
        long compared = 0, drifted = 0;
        foreach (var row in table.GetProperty("rows").EnumerateArray())
        {
            var kind = row[part].GetString();
            var count = Long(row[n]);
            var failed = Long(row[errors]);
            var side = row[path].GetString() == "new" ? candidate : legacy;
            switch (kind)
            {
                case "count":
                    side.Count += count;
                    side.Errors += failed;
                    break;
                case "latency":
                    side.Buckets[Math.Clamp((int)Long(row[bucket]), 0, bucketCount - 1)] += count;
                    break;
                case "drift":
                    compared += count;
                    drifted += failed;
                    break;
                default:
                    throw new FormatException($"Unexpected part '{kind}' in the Log Analytics answer.");
            }
        }

        return new HealthWindow(legacy.ToStats(), candidate.ToStats(), new DriftStats(compared, drifted));
    }

    // Numbers come back as JSON numbers (long, real) or null for an empty sum.
    private static long Long(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null => 0,
        JsonValueKind.Number when value.TryGetInt64(out var l) => l,
        JsonValueKind.Number => (long)Math.Round(value.GetDouble()),
        JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) => s,
        _ => throw new FormatException($"Expected a number in the Log Analytics answer, found {value.ValueKind}."),
    };

    private sealed class PathAccumulator(int buckets)
    {
        public long Count { get; set; }

        public long Errors { get; set; }

        public long[] Buckets { get; } = new long[buckets];

        public PathStats ToStats() => new(Count, Errors, LatencyHistogram.FromCounts(Buckets));
    }
}
