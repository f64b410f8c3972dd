using McDit.Torch.Diffusion;
using TorchSharp;
using Xunit;

namespace McDit.Torch.Tests.Training;

public class PatchMaskTests
{
    [Theory]
    [InlineData(16, 0.5, 8)]
    [InlineData(64, 0.75, 16)]
    [InlineData(256, 0.5, 128)]
    public void KeepsExactlyOneMinusRTimesLTokensPerSample(int length, double ratio, int keep)
    {
        using var g = new torch.Generator(1, torch.CPU);
        using var mask = PatchMask.Random(32, length, ratio, g);
        Assert.Equal(keep, mask.KeepCount);
        using var visible = (1 - mask.Mask).sum(1);
        Assert.All(visible.data<float>().ToArray(), v => Assert.Equal(keep, v));
        Assert.Equal(new long[] { 32, keep }, mask.IdsKeep.shape);
    }

    [Fact]
    public void MasksDifferPerSampleAndRepeatPerSeed()
    {
        using var g1 = new torch.Generator(3, torch.CPU);
        using var g2 = new torch.Generator(3, torch.CPU);
        using var g3 = new torch.Generator(4, torch.CPU);
        using var a = PatchMask.Random(8, 64, 0.5, g1);
        using var b = PatchMask.Random(8, 64, 0.5, g2);
        using var c = PatchMask.Random(8, 64, 0.5, g3);
        Assert.True(TestTensors.Same(a.Mask, b.Mask));
        Assert.False(TestTensors.Same(a.Mask, c.Mask));
        var rows = Enumerable.Range(0, 8).Select(i => string.Join("", a.Mask[i].data<float>().ToArray())).ToHashSet();
        Assert.Equal(8, rows.Count);
    }

    [Fact]
    public void GatherAndRestoreRoundTrip()
    {
        using var g = new torch.Generator(5, torch.CPU);
        using var mask = PatchMask.Random(4, 16, 0.5, g);
        using var tokens = torch.randn(4, 16, 3);
        using var kept = mask.GatherKept(tokens);
        using var masked = mask.GatherMasked(tokens);
        using var back = mask.Restore(kept, masked);
        Assert.True(TestTensors.Same(tokens, back));
    }

    [Fact]
    public void RatioOutsideTheRangeIsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PatchMask.KeptTokens(16, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PatchMask.KeptTokens(16, -0.1));
    }
}
