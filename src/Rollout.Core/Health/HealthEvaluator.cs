using System.Globalization;

namespace Rollout.Core.Health;

/// <summary>
/// Judges a window. The new path is compared with the legacy path of the same window (control vs canary), so
/// that a slow database or a bad hour shows on both and is not blamed on the rollout; where the legacy path
/// has too little traffic (at 100%) an earlier baseline stands in, and failing that an error-free, zero-latency
/// reference (the strictest). Below the minimum sample size the verdict is <see cref="HealthVerdict.InsufficientData"/>,
/// never a pass; a budget judged on enough samples is reported as broken even when another signal lacks samples.
/// </summary>
public static class HealthEvaluator
{
    /// <summary>Evaluates a window against budgets.</summary>
    /// <param name="budgets">The budgets.</param>
    /// <param name="window">The evidence.</param>
    /// <param name="candidateExposed">True when the phase exposes subjects (exposure above 0), so that the new path must have traffic.</param>
    public static HealthVerdict Evaluate(HealthBudgets budgets, HealthWindow window, bool candidateExposed)
    {
        ArgumentNullException.ThrowIfNull(budgets);
        ArgumentNullException.ThrowIfNull(window);

        var candidate = window.Candidate;
        var (referenceName, reference) = window.Legacy.Count >= budgets.MinSamples
            ? ("legacy", window.Legacy)
            : window.Baseline is { } baseline && baseline.Count >= budgets.MinSamples
                ? ("baseline", baseline)
                : ("no reference", PathStats.Empty);
        var candidateP95 = candidate.Latency.Percentile(0.95);
        var referenceP95 = reference.Latency.Percentile(0.95);
        var figures = new HealthFigures(candidate.Count, candidate.ErrorRate, candidateP95, reference.Count, reference.ErrorRate, referenceP95,
            referenceName, window.Drift.Compared, window.Drift.Rate);

        var breaches = new List<BudgetBreach>();
        var candidateJudged = candidate.Count >= budgets.MinSamples;
        if (candidateJudged)
        {
            var increase = candidate.ErrorRate - reference.ErrorRate;
            if (increase > budgets.MaxErrorRateIncrease)
            {
                breaches.Add(new BudgetBreach("maxErrorRateIncrease", increase, budgets.MaxErrorRateIncrease, Invariant(
                    $"error rate {candidate.ErrorRate:P2} on the new path vs {reference.ErrorRate:P2} on {referenceName}: +{increase * 100:0.###} points, allowed +{budgets.MaxErrorRateIncrease * 100:0.###}")));
            }

            if (candidateP95 is { } p95 && p95 > budgets.MaxP95LatencyMs)
            {
                breaches.Add(new BudgetBreach("maxP95LatencyMs", p95, budgets.MaxP95LatencyMs, Invariant(
                    $"p95 latency {p95:0.#} ms on the new path, allowed {budgets.MaxP95LatencyMs:0.#} ms")));
            }

            if (budgets.MaxP95LatencyIncreaseMs is { } allowedIncrease && candidateP95 is { } c && referenceP95 is { } r && c - r > allowedIncrease)
            {
                breaches.Add(new BudgetBreach("maxP95LatencyIncreaseMs", c - r, allowedIncrease, Invariant(
                    $"p95 latency {c:0.#} ms on the new path vs {r:0.#} ms on {referenceName}: +{c - r:0.#} ms, allowed +{allowedIncrease:0.#} ms")));
            }
        }

        var drift = window.Drift;
        var driftJudged = drift.FullPass ? drift.Compared > 0 : drift.Compared >= budgets.MinSamples;
        if (driftJudged && drift.Rate > budgets.MaxDriftRate)
        {
            breaches.Add(new BudgetBreach("maxDriftRate", drift.Rate, budgets.MaxDriftRate, Invariant(
                $"drift {drift.Rate:P3} ({drift.Drifted} of {drift.Compared} keys), allowed {budgets.MaxDriftRate:P3}")));
        }

        if (breaches.Count > 0)
        {
            return new HealthVerdict.Breach(breaches, figures);
        }

        if (candidateExposed && !candidateJudged)
        {
            return new HealthVerdict.InsufficientData(
                Invariant($"the new path has {candidate.Count} of the {budgets.MinSamples} samples needed"), candidate.Count, budgets.MinSamples, figures);
        }

        if (!candidateExposed && !driftJudged)
        {
            return new HealthVerdict.InsufficientData(
                Invariant($"{drift.Compared} of the {budgets.MinSamples} key comparisons needed (no full reconciliation pass yet)"), drift.Compared, budgets.MinSamples, figures);
        }

        return new HealthVerdict.Healthy(figures);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
