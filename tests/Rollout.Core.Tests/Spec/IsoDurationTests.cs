using Rollout.Core.Spec;

namespace Rollout.Core.Tests.Spec;

public sealed class IsoDurationTests
{
    [Theory]
    [InlineData("PT10M", 600)]
    [InlineData("PT1H30M", 5400)]
    [InlineData("P1D", 86400)]
    [InlineData("P1DT2H", 93600)]
    [InlineData("PT1.5S", 1.5)]
    [InlineData("P2W", 1209600)]
    [InlineData("PT0S", 0)]
    public void Parses_durations(string text, double seconds)
    {
        Assert.True(IsoDuration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("P")]
    [InlineData("PT")]
    [InlineData("P1DT")]
    [InlineData("10m")]
    [InlineData("P1M")]
    [InlineData("P1Y")]
    [InlineData("PT-5M")]
    [InlineData("pt5m")]
    [InlineData("P1W2D")]
    public void Refuses_what_is_not_a_fixed_length_duration(string text) =>
        Assert.False(IsoDuration.TryParse(text, out _));

    [Theory]
    [InlineData("PT10M")]
    [InlineData("P1DT2H30M")]
    [InlineData("PT1.5S")]
    [InlineData("P3D")]
    public void Format_round_trips(string text) =>
        Assert.Equal(text, IsoDuration.Format(IsoDuration.Parse(text)));
}
