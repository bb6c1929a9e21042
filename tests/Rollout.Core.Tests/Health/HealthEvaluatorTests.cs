using Rollout.Core.Health;

namespace Rollout.Core.Tests.Health;

public sealed class HealthEvaluatorTests
{
    private static readonly HealthBudgets Budgets = new(
        MaxErrorRateIncrease: 0.005, MaxP95LatencyMs: 250, MaxP95LatencyIncreaseMs: 50, MaxDriftRate: 0.001, MinSamples: 500);

    [Fact]
    public void Healthy_when_every_budget_holds_with_enough_samples()
    {
        var verdict = Evaluate(Path(1000, 10, 100), Path(1000, 12, 120), new DriftStats(10_000, 1));

        var healthy = Assert.IsType<HealthVerdict.Healthy>(verdict);
        Assert.Equal("legacy", healthy.Figures.Reference);
        Assert.Equal(1000, healthy.Figures.CandidateCount);
    }

    [Fact]
    public void Error_rate_is_judged_against_the_legacy_path_of_the_same_window()
    {
        // A bad hour: both paths fail at 8%. The new path is no worse, so this is not the rollout's fault.
        var sameBadHour = Evaluate(Path(1000, 80, 100), Path(1000, 82, 100), DriftStats.None);
        // The new path alone fails more than half a point over legacy.
        var worse = Evaluate(Path(1000, 10, 100), Path(1000, 20, 100), DriftStats.None);

        Assert.IsType<HealthVerdict.Healthy>(sameBadHour);
        var breach = Assert.Single(Assert.IsType<HealthVerdict.Breach>(worse).Breaches);
        Assert.Equal("maxErrorRateIncrease", breach.Budget);
        Assert.Equal(0.01, breach.Observed, 6);
        Assert.Equal(0.005, breach.Allowed);
    }

    [Fact]
    public void Absolute_p95_budget_is_broken_even_when_legacy_is_as_slow()
    {
        var verdict = Evaluate(Path(1000, 0, 300), Path(1000, 0, 300), DriftStats.None);

        var breach = Assert.Single(Assert.IsType<HealthVerdict.Breach>(verdict).Breaches);
        Assert.Equal("maxP95LatencyMs", breach.Budget);
        Assert.True(breach.Observed >= 300);
    }

    [Fact]
    public void P95_increase_over_legacy_is_a_breach()
    {
        var verdict = Evaluate(Path(1000, 0, 50), Path(1000, 0, 150), DriftStats.None);

        var breach = Assert.Single(Assert.IsType<HealthVerdict.Breach>(verdict).Breaches);
        Assert.Equal("maxP95LatencyIncreaseMs", breach.Budget);
        Assert.InRange(breach.Observed, 95, 110);
    }

    [Fact]
    public void Drift_above_budget_is_a_breach()
    {
        var verdict = Evaluate(Path(1000, 0, 10), Path(1000, 0, 10), new DriftStats(10_000, 50));

        var breach = Assert.Single(Assert.IsType<HealthVerdict.Breach>(verdict).Breaches);
        Assert.Equal("maxDriftRate", breach.Budget);
        Assert.Equal(0.005, breach.Observed, 6);
    }

    [Fact]
    public void Every_broken_budget_is_listed()
    {
        var verdict = Evaluate(Path(1000, 0, 10), Path(1000, 100, 400), new DriftStats(1000, 100));

        Assert.Equal(
            ["maxDriftRate", "maxErrorRateIncrease", "maxP95LatencyIncreaseMs", "maxP95LatencyMs"],
            Assert.IsType<HealthVerdict.Breach>(verdict).Breaches.Select(b => b.Budget).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Too_few_new_path_samples_is_insufficient_data_not_a_pass()
    {
        var verdict = Evaluate(Path(10_000, 0, 10), Path(499, 0, 10), DriftStats.None);

        var insufficient = Assert.IsType<HealthVerdict.InsufficientData>(verdict);
        Assert.Equal(499, insufficient.Samples);
        Assert.Equal(500, insufficient.Required);
    }

    [Fact]
    public void Too_few_samples_hide_no_error_breach_but_drift_is_still_judged()
    {
        // 100% errors on 10 requests: not enough to judge the error rate.
        var fewErrors = Evaluate(Path(10_000, 0, 10), Path(10, 10, 10), DriftStats.None);
        // Drift measured on a full table pass is judged whatever the request count.
        var drifted = Evaluate(Path(10_000, 0, 10), Path(10, 0, 10), new DriftStats(20, 5, FullPass: true));

        Assert.IsType<HealthVerdict.InsufficientData>(fewErrors);
        Assert.Equal("maxDriftRate", Assert.Single(Assert.IsType<HealthVerdict.Breach>(drifted).Breaches).Budget);
    }

    [Fact]
    public void At_zero_exposure_only_drift_is_judged()
    {
        var noComparison = HealthEvaluator.Evaluate(Budgets, new HealthWindow(Path(1000, 0, 10), PathStats.Empty, DriftStats.None), candidateExposed: false);
        var partial = HealthEvaluator.Evaluate(Budgets, new HealthWindow(Path(1000, 0, 10), PathStats.Empty, new DriftStats(100, 0)), candidateExposed: false);
        var fullPass = HealthEvaluator.Evaluate(Budgets, new HealthWindow(Path(1000, 0, 10), PathStats.Empty, new DriftStats(100, 0, FullPass: true)), candidateExposed: false);

        Assert.IsType<HealthVerdict.InsufficientData>(noComparison);
        Assert.IsType<HealthVerdict.InsufficientData>(partial);
        Assert.IsType<HealthVerdict.Healthy>(fullPass);
    }

    [Fact]
    public void At_full_exposure_the_baseline_stands_in_for_legacy()
    {
        var window = new HealthWindow(PathStats.Empty, Path(1000, 30, 10), DriftStats.None, Baseline: Path(1000, 28, 10));

        var verdict = HealthEvaluator.Evaluate(Budgets, window, candidateExposed: true);

        Assert.Equal("baseline", Assert.IsType<HealthVerdict.Healthy>(verdict).Figures.Reference);
    }

    [Fact]
    public void Without_legacy_or_baseline_the_reference_is_error_free()
    {
        var verdict = Evaluate(PathStats.Empty, Path(1000, 30, 10), DriftStats.None);

        var breach = Assert.IsType<HealthVerdict.Breach>(verdict);
        Assert.Equal("no reference", breach.Figures.Reference);
        Assert.Equal("maxErrorRateIncrease", Assert.Single(breach.Breaches).Budget);
    }

    [Fact]
    public void Latency_histogram_percentiles_never_understate()
    {
        var histogram = new LatencyHistogram();
        for (var i = 1; i <= 100; i++)
        {
            histogram.Record(i);
        }

        var p95 = histogram.Percentile(0.95)!.Value;
        Assert.InRange(p95, 95, 95 * 1.06);
        Assert.Null(new LatencyHistogram().Percentile(0.95));
        var restored = LatencyHistogram.FromCounts(histogram.Counts);
        Assert.Equal(p95, restored.Percentile(0.95));
        Assert.Equal(100, restored.Count);
    }

    [Fact]
    public void Merged_histograms_equal_one_histogram_of_all_samples()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        var all = new LatencyHistogram();
        for (var i = 0; i < 1000; i++)
        {
            var ms = (i * 7919 % 1000) / 3.0;
            (i % 2 == 0 ? a : b).Record(ms);
            all.Record(ms);
        }

        a.Merge(b);

        Assert.Equal(all.Counts, a.Counts);
        Assert.Equal(all.Percentile(0.99), a.Percentile(0.99));
    }

    private static HealthVerdict Evaluate(PathStats legacy, PathStats candidate, DriftStats drift) =>
        HealthEvaluator.Evaluate(Budgets, new HealthWindow(legacy, candidate, drift), candidateExposed: true);

    private static PathStats Path(long count, long errors, double latencyMs)
    {
        var histogram = new LatencyHistogram();
        for (var i = 0; i < count; i++)
        {
            histogram.Record(latencyMs);
        }

        return new PathStats(count, errors, histogram);
    }
}
