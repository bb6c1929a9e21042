using System.Buffers;
using System.IO.Hashing;
using System.Text;

namespace Rollout.Core.Exposure;

/// <summary>
/// Sticky, deterministic exposure: a subject's bucket is a hash of (feature, salt, subject id) into
/// <see cref="BucketCount"/> buckets, and the subject is exposed while its bucket is below the exposure's
/// threshold. The same subject lands in the same bucket on every process and machine (XxHash3 over UTF-8,
/// never <c>string.GetHashCode</c>), so raising the exposure only adds subjects (monotonic).
/// A decision allocates nothing.
/// </summary>
public sealed class ExposureBucketer
{
    /// <summary>Number of buckets: one per 0.001%.</summary>
    public const int BucketCount = 100_000;

    private const int StackLimit = 256;

    private readonly long _seed;

    /// <summary>Creates the bucketer of one feature.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="salt">Optional salt; changing it reshuffles the buckets.</param>
    public ExposureBucketer(string feature, string? salt = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(feature);
        Feature = feature;
        Salt = salt ?? string.Empty;
        // Length-prefixing the feature keeps ("ab","c") and ("a","bc") apart.
        var seedText = $"{feature.Length}:{feature}|{Salt}";
        _seed = unchecked((long)XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(seedText)));
    }

    /// <summary>The feature this bucketer decides for.</summary>
    public string Feature { get; }

    /// <summary>The salt in use (empty when none).</summary>
    public string Salt { get; }

    /// <summary>The subject's bucket, in [0, <see cref="BucketCount"/>).</summary>
    /// <param name="subjectId">The subject (user, tenant, order…) id.</param>
    public int Bucket(ReadOnlySpan<char> subjectId)
    {
        var maxBytes = Encoding.UTF8.GetMaxByteCount(subjectId.Length);
        byte[]? rented = null;
        var buffer = maxBytes <= StackLimit ? stackalloc byte[StackLimit] : (rented = ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            var length = Encoding.UTF8.GetBytes(subjectId, buffer);
            var hash = XxHash3.HashToUInt64(buffer[..length], _seed);
            return (int)(hash % BucketCount);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>True when the subject takes the new path at this exposure.</summary>
    /// <param name="subjectId">The subject id.</param>
    /// <param name="exposure">The current exposure.</param>
    public bool IsExposed(ReadOnlySpan<char> subjectId, ExposureLevel exposure) =>
        exposure.Buckets > 0 && (exposure.Buckets >= BucketCount || Bucket(subjectId) < exposure.Buckets);
}

/// <summary>An exposure as a whole number of buckets (percent × 1000), so that 0.001% steps are exact.</summary>
/// <param name="Buckets">Exposed buckets, 0 to <see cref="ExposureBucketer.BucketCount"/>.</param>
public readonly record struct ExposureLevel(int Buckets)
{
    /// <summary>Nobody exposed.</summary>
    public static ExposureLevel None => new(0);

    /// <summary>Everybody exposed.</summary>
    public static ExposureLevel Full => new(ExposureBucketer.BucketCount);

    /// <summary>The exposure in percent.</summary>
    public decimal Percent => Buckets / 1000m;

    /// <summary>Converts a percent with at most three decimals.</summary>
    /// <param name="percent">0 to 100.</param>
    /// <exception cref="ArgumentOutOfRangeException">Outside 0..100 or finer than 0.001.</exception>
    public static ExposureLevel FromPercent(decimal percent)
    {
        if (percent is < 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "Exposure is a percent from 0 to 100.");
        }

        var buckets = percent * 1000m;
        if (buckets != decimal.Truncate(buckets))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "Exposure has at most three decimals.");
        }

        return new ExposureLevel((int)buckets);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Percent.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}%";
}
