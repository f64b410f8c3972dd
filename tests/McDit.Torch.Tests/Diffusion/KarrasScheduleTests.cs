using McDit.Torch.Diffusion;
using Xunit;

namespace McDit.Torch.Tests.Diffusion;

public class KarrasScheduleTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(18)]
    [InlineData(40)]
    public void StartsAtSigmaMaxEndsAtSigmaMinThenZeroAndDecreases(int steps)
    {
        var s = KarrasSchedule.Sigmas(steps);
        Assert.Equal(steps + 1, s.Length);
        Assert.Equal(80.0, s[0], 12);
        Assert.Equal(0.002, s[steps - 1], 12);
        Assert.Equal(0.0, s[steps]);
        for (int i = 0; i < steps; i++) Assert.True(s[i] > s[i + 1], $"σ_{i} = {s[i]} is not above σ_{i + 1} = {s[i + 1]}");
    }

    [Fact]
    public void MiddleValueMatchesHandComputation()
    {
        // N = 3: σ_1 = ((80^(1/7) + 0.002^(1/7)) / 2)^7 = ((1.8702374 + 0.4115560) / 2)^7 = 1.1408967^7 ≈ 2.515219.
        var s = KarrasSchedule.Sigmas(3);
        Assert.Equal(2.515219, s[1], 5);
        // EDM's 18-step schedule starts 80, 57.586, 40.786, …
        var s18 = KarrasSchedule.Sigmas(18);
        Assert.Equal(57.58598, s18[1], 4);
        Assert.Equal(40.78557, s18[2], 4);
    }

    [Fact]
    public void OneStepGoesStraightFromSigmaMaxToZero()
    {
        Assert.Equal(new[] { 80.0, 0.0 }, KarrasSchedule.Sigmas(1));
    }

    [Fact]
    public void BadArgumentsSayWhatWasExpected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => KarrasSchedule.Sigmas(0));
        Assert.Equal("steps", e.ParamName);
        Assert.Contains("at least 1", e.Message);
        Assert.Contains("σ_min", Assert.Throws<ArgumentOutOfRangeException>(() => KarrasSchedule.Sigmas(18, sigmaMin: 0)).Message);
        Assert.Contains("greater than σ_min", Assert.Throws<ArgumentOutOfRangeException>(() => KarrasSchedule.Sigmas(18, 1, 0.5)).Message);
        Assert.Contains("ρ", Assert.Throws<ArgumentOutOfRangeException>(() => KarrasSchedule.Sigmas(18, rho: double.NaN)).Message);
    }
}
