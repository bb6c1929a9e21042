namespace Rollout.Core.Health;

/// <summary>Where health evaluation reads measured traffic and drift from (a local table, or Application Insights).</summary>
public interface IHealthWindowSource
{
    /// <summary>
    /// The traffic of both paths between <paramref name="from"/> and <paramref name="to"/>, and the latest drift
    /// measured by reconciliation.
    /// </summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="from">Start of the window (inclusive).</param>
    /// <param name="to">End of the window (exclusive).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<HealthWindow> QueryWindowAsync(string feature, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken);
}
