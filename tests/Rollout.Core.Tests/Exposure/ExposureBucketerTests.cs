using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rollout.Core.Exposure;

namespace Rollout.Core.Tests.Exposure;

public sealed class ExposureBucketerTests
{
    private const int Subjects = 100_000;

    // Chi-square critical values at p = 0.001: a correct hash fails these about once in a thousand
    // feature/percent combinations; the subjects are fixed, so the outcome is the same on every run.
    private const double ChiSquare1DofP001 = 10.828;
    private const double ChiSquare99DofP001 = 148.230;

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(25)]
    [InlineData(50)]
    public void Exposed_share_matches_the_percent(int percent)
    {
        var bucketer = new ExposureBucketer("orders-v2", "2026-11");
        var level = ExposureLevel.FromPercent(percent);
        var exposed = 0;
        for (var i = 0; i < Subjects; i++)
        {
            if (bucketer.IsExposed(SubjectId(i), level))
            {
                exposed++;
            }
        }

        var expected = Subjects * percent / 100.0;
        var chi = Math.Pow(exposed - expected, 2) / expected + Math.Pow((Subjects - exposed) - (Subjects - expected), 2) / (Subjects - expected);
        Assert.True(chi < ChiSquare1DofP001, $"{exposed} exposed of {Subjects} at {percent}% (expected {expected}); chi-square {chi:F2}");
    }

    [Theory]
    [InlineData("orders-v2")]
    [InlineData("profiles-docstore")]
    [InlineData("a")]
    public void Buckets_are_uniform_over_one_hundred_bins(string feature)
    {
        var bucketer = new ExposureBucketer(feature);
        var bins = new int[100];
        for (var i = 0; i < Subjects; i++)
        {
            bins[bucketer.Bucket(SubjectId(i)) / 1000]++;
        }

        var expected = Subjects / 100.0;
        var chi = bins.Sum(observed => Math.Pow(observed - expected, 2) / expected);
        Assert.True(chi < ChiSquare99DofP001, $"chi-square {chi:F2} over 100 bins for '{feature}'");
    }

    [Property(MaxTest = 500)]
    public void Exposure_is_monotonic_in_the_percent(NonEmptyString subject, byte a, byte b)
    {
        var bucketer = new ExposureBucketer("orders-v2");
        var low = ExposureLevel.FromPercent(Math.Min(a, b) % 101);
        var high = ExposureLevel.FromPercent(Math.Max(a, b) % 101 < low.Percent ? low.Percent : Math.Max(a, b) % 101);

        if (bucketer.IsExposed(subject.Get, low))
        {
            Assert.True(bucketer.IsExposed(subject.Get, high), $"exposed at {low} but not at {high}");
        }
    }

    [Property(MaxTest = 500)]
    public Property Bucket_is_in_range_and_deterministic(NonEmptyString feature, string? salt, string subject)
    {
        subject ??= string.Empty;
        var first = new ExposureBucketer(feature.Get, salt).Bucket(subject);
        var second = new ExposureBucketer(feature.Get, salt).Bucket(new string(subject.AsSpan()));
        return (first >= 0 && first < ExposureBucketer.BucketCount && first == second).ToProperty();
    }

    [Fact]
    public void Zero_exposes_nobody_and_one_hundred_exposes_everybody()
    {
        var bucketer = new ExposureBucketer("orders-v2");
        for (var i = 0; i < 1000; i++)
        {
            Assert.False(bucketer.IsExposed(SubjectId(i), ExposureLevel.None));
            Assert.True(bucketer.IsExposed(SubjectId(i), ExposureLevel.Full));
        }
    }

    [Fact]
    public void Salt_and_feature_reshuffle_the_buckets()
    {
        var plain = new ExposureBucketer("orders-v2");
        var salted = new ExposureBucketer("orders-v2", "reshuffle");
        var other = new ExposureBucketer("orders-v3");
        var sameSalted = Enumerable.Range(0, 1000).Count(i => plain.Bucket(SubjectId(i)) == salted.Bucket(SubjectId(i)));
        var sameOther = Enumerable.Range(0, 1000).Count(i => plain.Bucket(SubjectId(i)) == other.Bucket(SubjectId(i)));

        Assert.True(sameSalted < 5, $"{sameSalted} of 1000 subjects kept their bucket after a salt change");
        Assert.True(sameOther < 5, $"{sameOther} of 1000 subjects share a bucket across features");
    }

    [Fact]
    public void Feature_and_salt_boundaries_do_not_collide()
    {
        Assert.NotEqual(new ExposureBucketer("ab", "c").Bucket("user-1"), new ExposureBucketer("a", "bc").Bucket("user-1"));
    }

    [Fact]
    public void Long_and_non_ascii_subjects_hash_like_any_other()
    {
        var bucketer = new ExposureBucketer("orders-v2");
        var longId = new string('x', 5000);

        Assert.Equal(bucketer.Bucket(longId), bucketer.Bucket(longId.ToCharArray()));
        Assert.NotEqual(bucketer.Bucket("Zoë"), bucketer.Bucket("Zoe"));
    }

    // Pinned so that any change of hash, encoding or seed derivation is caught: it would re-expose
    // different subjects in every running rollout.
    [Theory]
    [InlineData("orders-v2", null, "user-1", PinnedA)]
    [InlineData("orders-v2", null, "user-2", PinnedB)]
    [InlineData("orders-v2", "2026-11", "user-1", PinnedC)]
    [InlineData("profiles-docstore", null, "4f0c2a8e-1b7d-4c55-9e0a-2d5f3c1b6a77", PinnedD)]
    [InlineData("orders-v2", null, "Zoë", PinnedE)]
    public void Known_vectors_are_stable(string feature, string? salt, string subject, int bucket) =>
        Assert.Equal(bucket, new ExposureBucketer(feature, salt).Bucket(subject));

    [Fact]
    public void Exposure_level_counts_thousandths_of_a_percent()
    {
        Assert.Equal(1_250, ExposureLevel.FromPercent(1.25m).Buckets);
        Assert.Equal(1, ExposureLevel.FromPercent(0.001m).Buckets);
        Assert.Throws<ArgumentOutOfRangeException>(() => ExposureLevel.FromPercent(0.0001m));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExposureLevel.FromPercent(100.5m));
        Assert.Equal("0.5%", ExposureLevel.FromPercent(0.5m).ToString());
    }

    private const int PinnedA = 17921;
    private const int PinnedB = 98455;
    private const int PinnedC = 67838;
    private const int PinnedD = 64508;
    private const int PinnedE = 29556;

    private static string SubjectId(int i) => "user-" + i.ToString(CultureInfo.InvariantCulture);
}
