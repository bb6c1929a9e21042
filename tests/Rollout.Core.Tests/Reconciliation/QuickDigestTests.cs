using Rollout.Core.Reconciliation;

namespace Rollout.Core.Tests.Reconciliation;

public sealed class QuickDigestTests
{
    [Fact]
    public void Structured_version_drift_on_keys_in_arithmetic_progression_changes_the_sum()
    {
        // Source versions (0, 2, 3, 3), target (1, 1, 2, 4) on keys k, k+d, k+2d, k+3d: the sum of
        // (key*A + version)^2 is the same on both sides for every k and d (the first and second moments of the
        // changes vanish), which is how a quick segment with four drifted rows once passed as clean.
        var cancelled = new List<(long K, long D)>();
        for (long k = 1; k <= 2000; k++)
        {
            for (long d = 1; d <= 8; d++)
            {
                var keys = new[] { k, k + d, k + (2 * d), k + (3 * d) };
                long[] source = [0, 2, 3, 3];
                long[] target = [1, 1, 2, 4];
                var sourceSum = keys.Select((key, i) => QuickDigest.Of(key, source[i])).Sum();
                var targetSum = keys.Select((key, i) => QuickDigest.Of(key, target[i])).Sum();
                if (sourceSum == targetSum)
                {
                    cancelled.Add((k, d));
                }
            }
        }

        Assert.Empty(cancelled);
    }

    [Fact]
    public void Digests_are_in_range_and_depend_on_key_and_version()
    {
        var seen = new HashSet<long>();
        for (long key = -50; key <= 50; key++)
        {
            for (long version = 0; version < 20; version++)
            {
                var digest = QuickDigest.Of(key, version);
                Assert.InRange(digest, 0, QuickDigest.Modulus - 1);
                seen.Add(digest);
            }
        }

        // 2,020 (key, version) pairs, no two alike (h is injective on this range and the rest is a bijection).
        Assert.Equal(101 * 20, seen.Count);
    }
}
