using McDit.Torch.Diffusion;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Diffusion;

public class EdmPreconditioningTests
{
    public EdmPreconditioningTests() => TorchBackend.EnsureInitialized();

    static double[] Values(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();

    [Fact]
    public void CoefficientsMatchHandComputedValues()
    {
        var p = new EdmPreconditioning();
        using var sigma = torch.tensor(new[] { 0.5, 2.0 });
        // σ = 0.5: σ² + σd² = 0.5.  σ = 2: σ² + σd² = 4.25.
        using (var c = p.CSkip(sigma)) AssertClose(new[] { 0.5, 0.25 / 4.25 }, Values(c));
        using (var c = p.COut(sigma)) AssertClose(new[] { 0.25 / Math.Sqrt(0.5), 1.0 / Math.Sqrt(4.25) }, Values(c));
        using (var c = p.CIn(sigma)) AssertClose(new[] { Math.Sqrt(2.0), 1.0 / Math.Sqrt(4.25) }, Values(c));
        using (var c = p.CNoise(sigma)) AssertClose(new[] { -0.1732868, 0.1732868 }, Values(c));
        using (var c = p.LossWeight(sigma)) AssertClose(new[] { 8.0, 4.25 }, Values(c));
        // Numbers: 0.5, 0.0588235; 0.3535534, 0.4850713; 1.4142136, 0.4850713.
        using (var c = p.COut(sigma)) AssertClose(new[] { 0.3535534, 0.4850713 }, Values(c));
        using (var c = p.CSkip(sigma)) AssertClose(new[] { 0.5, 0.0588235 }, Values(c));
    }

    [Fact]
    public void IdentitiesHoldAndShapeFollowsSigma()
    {
        var p = new EdmPreconditioning(0.7);
        using var sigma = torch.logspace(-3, 2, 12, dtype: ScalarType.Float64).reshape(3, 4);
        using var skip = p.CSkip(sigma);
        using var cout = p.COut(sigma);
        using var weight = p.LossWeight(sigma);
        Assert.Equal(new long[] { 3, 4 }, skip.shape);
        Assert.Equal(ScalarType.Float64, skip.dtype);
        // c_skip + c_out²/σd² = 1 and λ·c_out² = 1.
        using var one = skip + cout.square() / 0.49;
        using var one2 = weight * cout.square();
        Assert.All(Values(one), v => Assert.Equal(1.0, v, 12));
        Assert.All(Values(one2), v => Assert.Equal(1.0, v, 10));
    }

    [Fact]
    public void DenoiseCombinesSkipAndNetworkPerSample()
    {
        var p = new EdmPreconditioning();
        using var x = torch.arange(8, dtype: ScalarType.Float32).reshape(2, 1, 2, 2);
        using var sigma = torch.tensor(new[] { 0.5f, 2f });
        Tensor? seenIn = null, seenNoise = null;
        using var d = p.Denoise(x, sigma, (xin, cnoise) =>
        {
            seenIn = xin.clone().DetachFromDisposeScope();
            seenNoise = cnoise.clone().DetachFromDisposeScope();
            return torch.ones_like(xin);
        });
        Assert.Equal(ScalarType.Float32, d.dtype);
        Assert.Equal(x.shape, d.shape);
        AssertClose(new[] { -0.1732868, 0.1732868 }, Values(seenNoise!));
        var xs = Values(x);
        var expectIn = xs.Select((v, i) => v * (i < 4 ? Math.Sqrt(2) : 1 / Math.Sqrt(4.25))).ToArray();
        AssertClose(expectIn, Values(seenIn!), 1e-5);
        var expectD = xs.Select((v, i) => i < 4 ? 0.5 * v + 0.3535534 : 0.0588235 * v + 0.4850713).ToArray();
        AssertClose(expectD, Values(d), 1e-5);
        seenIn!.Dispose(); seenNoise!.Dispose();
    }

    [Fact]
    public void ScalarSigmaIsBroadcastAndNoiseConditioningIsPerSample()
    {
        var p = new EdmPreconditioning();
        using var x = torch.ones(3, 2, 2, 2);
        using var sigma = torch.tensor(2.0f);
        long[]? noiseShape = null;
        using var d = p.Denoise(x, sigma, (xin, cnoise) => { noiseShape = cnoise.shape; return torch.zeros_like(xin); });
        Assert.Equal(new long[] { 3 }, noiseShape);
        Assert.All(Values(d), v => Assert.Equal(0.25 / 4.25, v, 6));
    }

    [Fact]
    public void ToDenoiserPassesLabelsToTheNetwork()
    {
        var p = new EdmPreconditioning();
        Tensor? seen = null;
        var denoiser = p.ToDenoiser((xin, cnoise, labels) => { seen = labels; return torch.zeros_like(xin); });
        using var x = torch.ones(2, 1, 1, 1);
        using var sigma = torch.full(2, 0.5f);
        using var labels = torch.tensor(new long[] { 3, 1 });
        using var d = denoiser(x, sigma, labels);
        Assert.Same(labels, seen);
        Assert.All(Values(d), v => Assert.Equal(0.5, v, 6));
    }

    [Fact]
    public void DenoiseRejectsMismatchedSigmaAndNetworkOutput()
    {
        var p = new EdmPreconditioning();
        using var x = torch.ones(3, 1, 2, 2);
        using var sigma2 = torch.ones(2);
        Assert.Contains("N = 3", Assert.Throws<ArgumentException>(() => p.Denoise(x, sigma2, (a, _) => a.clone())).Message);
        using var sigma = torch.ones(3);
        Assert.Contains("expected the shape of x",
            Assert.Throws<ArgumentException>(() => p.Denoise(x, sigma, (a, _) => torch.zeros(3, 4))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new EdmPreconditioning(0));
    }

    static void AssertClose(double[] expected, double[] actual, double tol = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"[{i}] expected {expected[i]}, got {actual[i]}");
    }
}
