using System.Globalization;
using Rollout.Core.Spec;

namespace Rollout.Core.Health;

/// <summary>
/// A mergeable latency histogram with log-spaced buckets (about 5% wide, 0.05 ms to 10 min). Percentiles
/// report the upper edge of the bucket that holds them, so they never understate latency.
/// </summary>
public sealed class LatencyHistogram
{
    private const double MinMs = 0.05;
    private const double Growth = 1.05;
    private static readonly double[] UpperBounds = BuildBounds();

    private readonly long[] _counts;

    /// <summary>Creates an empty histogram.</summary>
    public LatencyHistogram() => _counts = new long[UpperBounds.Length + 1];

    private LatencyHistogram(long[] counts) => _counts = counts;

    /// <summary>Samples recorded.</summary>
    public long Count { get; private set; }

    /// <summary>Records one latency.</summary>
    /// <param name="milliseconds">Latency in ms; negative values count as 0.</param>
    public void Record(double milliseconds)
    {
        var index = Array.BinarySearch(UpperBounds, Math.Max(0, milliseconds));
        _counts[index >= 0 ? index : ~index]++;
        Count++;
    }

    /// <summary>Adds another histogram's samples to this one.</summary>
    /// <param name="other">Histogram to merge.</param>
    public void Merge(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
    }

    /// <summary>The latency below which a share <paramref name="quantile"/> of samples fall, or null when empty.</summary>
    /// <param name="quantile">0 &lt; q ≤ 1, for example 0.95.</param>
    public double? Percentile(double quantile)
    {
        if (Count == 0)
        {
            return null;
        }

        var rank = (long)Math.Ceiling(quantile * Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return i < UpperBounds.Length ? UpperBounds[i] : double.PositiveInfinity;
            }
        }

        return double.PositiveInfinity;
    }

    /// <summary>Bucket counts, for storage; <see cref="FromCounts"/> restores them.</summary>
    public IReadOnlyList<long> Counts => _counts;

    /// <summary>Restores a histogram from <see cref="Counts"/>.</summary>
    /// <param name="counts">Stored counts.</param>
    public static LatencyHistogram FromCounts(IReadOnlyList<long> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Count != UpperBounds.Length + 1)
        {
            throw new ArgumentException($"Expected {UpperBounds.Length + 1} buckets, got {counts.Count}.", nameof(counts));
        }

        return new LatencyHistogram([.. counts]) { Count = counts.Sum() };
    }

    private static double[] BuildBounds()
    {
        var bounds = new List<double>();
        for (var b = MinMs; b < 600_000; b *= Growth)
        {
            bounds.Add(Math.Round(b, 3));
        }

        return [.. bounds];
    }
}

/// <summary>What one path (legacy or new) did in a window.</summary>
/// <param name="Count">Requests.</param>
/// <param name="Errors">Requests that failed.</param>
/// <param name="Latency">Their latencies.</param>
public sealed record PathStats(long Count, long Errors, LatencyHistogram Latency)
{
    /// <summary>No traffic.</summary>
    public static PathStats Empty => new(0, 0, new LatencyHistogram());

    /// <summary>Errors / count, 0 when empty.</summary>
    public double ErrorRate => Count == 0 ? 0 : (double)Errors / Count;
}

/// <summary>What comparisons of the two stores found in a window.</summary>
/// <param name="Compared">Keys compared (reconciliation and shadow reads).</param>
/// <param name="Drifted">Keys that differed.</param>
/// <param name="FullPass">A reconciliation covered the whole table, so the rate is complete however few keys there are.</param>
public sealed record DriftStats(long Compared, long Drifted, bool FullPass = false)
{
    /// <summary>Nothing compared yet.</summary>
    public static DriftStats None => new(0, 0);

    /// <summary>Drifted / compared, 0 when nothing was compared.</summary>
    public double Rate => Compared == 0 ? 0 : (double)Drifted / Compared;
}

/// <summary>The evidence for one verdict: both paths in the same window, and drift.</summary>
/// <param name="Legacy">The legacy path (control).</param>
/// <param name="Candidate">The new path.</param>
/// <param name="Drift">Store comparison.</param>
/// <param name="Baseline">Legacy figures from an earlier window, used when the legacy path has too little traffic now (at 100%).</param>
public sealed record HealthWindow(PathStats Legacy, PathStats Candidate, DriftStats Drift, PathStats? Baseline = null);

/// <summary>Health budgets in evaluable form.</summary>
/// <param name="MaxErrorRateIncrease">Allowed error-rate increase over the reference.</param>
/// <param name="MaxP95LatencyMs">Allowed p95 of the new path.</param>
/// <param name="MaxP95LatencyIncreaseMs">Allowed p95 increase over the reference, or null.</param>
/// <param name="MaxDriftRate">Allowed drift rate.</param>
/// <param name="MinSamples">Samples needed to judge.</param>
public sealed record HealthBudgets(double MaxErrorRateIncrease, double MaxP95LatencyMs, double? MaxP95LatencyIncreaseMs, double MaxDriftRate, int MinSamples)
{
    /// <summary>From a validated spec section.</summary>
    /// <param name="spec">The budgets section.</param>
    public static HealthBudgets From(BudgetsSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new(spec.MaxErrorRateIncrease, spec.MaxP95LatencyMs, spec.MaxP95LatencyIncreaseMs, spec.MaxDriftRate, spec.MinSamples);
    }
}

/// <summary>A broken budget: which, what was seen, what was allowed.</summary>
/// <param name="Budget">Budget name as in the spec (<c>maxErrorRateIncrease</c>…).</param>
/// <param name="Observed">Observed value.</param>
/// <param name="Allowed">Allowed value.</param>
/// <param name="Detail">One sentence for people.</param>
public sealed record BudgetBreach(string Budget, double Observed, double Allowed, string Detail)
{
    /// <inheritdoc />
    public override string ToString() => Detail;
}

/// <summary>The figures a verdict was based on, for status and audit.</summary>
/// <param name="CandidateCount">New-path requests.</param>
/// <param name="CandidateErrorRate">New-path error rate.</param>
/// <param name="CandidateP95Ms">New-path p95, null without samples.</param>
/// <param name="ReferenceCount">Requests of the reference (legacy or baseline).</param>
/// <param name="ReferenceErrorRate">Reference error rate.</param>
/// <param name="ReferenceP95Ms">Reference p95.</param>
/// <param name="Reference">Which reference: legacy, baseline or none.</param>
/// <param name="DriftCompared">Keys compared.</param>
/// <param name="DriftRate">Drift rate.</param>
public sealed record HealthFigures(
    long CandidateCount,
    double CandidateErrorRate,
    double? CandidateP95Ms,
    long ReferenceCount,
    double ReferenceErrorRate,
    double? ReferenceP95Ms,
    string Reference,
    long DriftCompared,
    double DriftRate)
{
    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"new path n={CandidateCount} err={CandidateErrorRate:P2} p95={Ms(CandidateP95Ms)}; {Reference} n={ReferenceCount} err={ReferenceErrorRate:P2} p95={Ms(ReferenceP95Ms)}; drift {DriftRate:P3} of {DriftCompared}");

    private static string Ms(double? ms) => ms is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v:0.#}ms") : "-";
}

/// <summary>A health verdict: <see cref="Healthy"/>, <see cref="Breach"/> or <see cref="InsufficientData"/>.</summary>
public abstract record HealthVerdict
{
    private HealthVerdict(HealthFigures figures) => Figures = figures;

    /// <summary>The evidence.</summary>
    public HealthFigures Figures { get; }

    /// <summary>Every budget held with enough samples.</summary>
    public sealed record Healthy(HealthFigures Evidence) : HealthVerdict(Evidence);

    /// <summary>At least one budget is broken.</summary>
    public sealed record Breach(IReadOnlyList<BudgetBreach> Breaches, HealthFigures Evidence) : HealthVerdict(Evidence);

    /// <summary>Too few samples to judge: not a pass.</summary>
    public sealed record InsufficientData(string Reason, long Samples, long Required, HealthFigures Evidence) : HealthVerdict(Evidence);
}
