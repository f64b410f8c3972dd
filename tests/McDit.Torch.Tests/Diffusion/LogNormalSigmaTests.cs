using McDit.Torch.Diffusion;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Diffusion;

public class LogNormalSigmaTests
{
    public LogNormalSigmaTests() => TorchBackend.EnsureInitialized();

    [Fact]
    public void SameSeedGivesSameSigmasDifferentSeedDiffers()
    {
        var dist = new LogNormalSigma();
        using var g1 = new Generator(7);
        using var g2 = new Generator(7);
        using var g3 = new Generator(8);
        using var a = dist.Sample(64, g1, null);
        using var b = dist.Sample(64, g2, CPU);
        using var c = dist.Sample(64, g3, null);
        Assert.Equal(ScalarType.Float32, a.dtype);
        Assert.Equal(new long[] { 64 }, a.shape);
        Assert.Equal(a.data<float>().ToArray(), b.data<float>().ToArray());
        Assert.NotEqual(a.data<float>().ToArray(), c.data<float>().ToArray());
    }

    [Fact]
    public void LogSigmaHasTheRequestedMeanAndStd()
    {
        const int n = 20000;
        using var g = new Generator(1234);
        using var sigma = new LogNormalSigma().Sample(n, g, null);
        var logs = sigma.data<float>().ToArray().Select(v => Math.Log(v)).ToArray();
        double mean = logs.Average();
        double std = Math.Sqrt(logs.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        // Three standard errors: 1.2/√n ≈ 0.0085 for the mean, 1.2/√(2n) ≈ 0.006 for the std.
        Assert.InRange(mean, -1.2 - 3 * 1.2 / Math.Sqrt(n), -1.2 + 3 * 1.2 / Math.Sqrt(n));
        Assert.InRange(std, 1.2 - 3 * 1.2 / Math.Sqrt(2.0 * n), 1.2 + 3 * 1.2 / Math.Sqrt(2.0 * n));
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogNormalSigma().Sample(0, null, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogNormalSigma(pStd: -1));
    }
}
