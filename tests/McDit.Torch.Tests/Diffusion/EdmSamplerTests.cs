using McDit.Torch.Diffusion;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Diffusion;

public class EdmSamplerTests
{
    const double Mu = 0.3, S = 0.4;

    public EdmSamplerTests() => TorchBackend.EnsureInitialized();

    /// <summary>The exact denoiser of data N(μ, s²) per dimension: D(x; σ) = (s²·x + σ²·μ) / (s² + σ²).</summary>
    static Tensor GaussianDenoiser(Tensor x, Tensor sigma, Tensor mean)
    {
        using var scope = NewDisposeScope();
        var shape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
        shape[0] = -1;
        var s2 = sigma.reshape(shape).square();
        var m = mean.reshape(shape).to(x.dtype);
        return ((x * (S * S) + s2 * m) / (s2 + S * S)).MoveToOuterDisposeScope();
    }

    static Denoiser Gaussian(double mu) => (x, sigma, _) =>
    {
        using var m = torch.tensor(mu);
        return GaussianDenoiser(x, sigma, m);
    };

    /// <summary>
    /// Runs the same solver on the affine map x = α·z + β in plain doubles: with the Gaussian denoiser every step is
    /// affine, so the sampler's output is exactly α·z + β with these coefficients (up to float32 denoiser rounding).
    /// </summary>
    static (double Alpha, double Beta) AffineMap(int steps, bool heun, double mu)
    {
        var t = KarrasSchedule.Sigmas(steps);
        (double, double) D(double a, double b, double sigma)
        {
            double k = S * S / (S * S + sigma * sigma);
            return (k * a, k * b + sigma * sigma * mu / (S * S + sigma * sigma));
        }
        double alpha = t[0], beta = 0;
        for (int i = 0; i < steps; i++)
        {
            double h = t[i + 1] - t[i];
            var (da, db) = D(alpha, beta, t[i]);
            double ga = (alpha - da) / t[i], gb = (beta - db) / t[i];
            double na = alpha + h * ga, nb = beta + h * gb;
            if (heun && i < steps - 1)
            {
                var (ea, eb) = D(na, nb, t[i + 1]);
                double pa = (na - ea) / t[i + 1], pb = (nb - eb) / t[i + 1];
                na = alpha + h * (0.5 * ga + 0.5 * pa);
                nb = beta + h * (0.5 * gb + 0.5 * pb);
            }
            alpha = na; beta = nb;
        }
        return (alpha, beta);
    }

    [Theory]
    [InlineData(SamplerSolver.Heun, 18, 0.03)]
    [InlineData(SamplerSolver.Euler, 200, 0.01)]
    public void GaussianDataIsRecovered(SamplerSolver solver, int steps, double discretisationBound)
    {
        const int n = 20000;
        using var g = new Generator(42);
        using var z = torch.randn(new long[] { n, 1, 1, 1 }, generator: g);
        var options = new SamplerOptions { Solver = solver, Steps = steps };
        using var x = EdmSampler.Sample(Gaussian(Mu), z, null, options);
        Assert.Equal(ScalarType.Float32, x.dtype);
        Assert.Equal(z.shape, x.shape);

        // 1. The solver is exactly the affine map the EDM recursion gives (MaskDiT's arithmetic in float64).
        var (alpha, beta) = AffineMap(steps, solver == SamplerSolver.Heun, Mu);
        var zs = z.data<float>().ToArray();
        var xs = x.data<float>().ToArray();
        double maxErr = zs.Select((v, i) => Math.Abs(xs[i] - (alpha * v + beta))).Max();
        Assert.True(maxErr < 1e-5, $"max |x − (α·z + β)| = {maxErr}");

        // 2. The discretisation error of this solver is small: the exact ODE maps σ_max·z to μ + s·z (up to s/σ_max).
        // Heun-18 is 2nd order but coarse around σ ≈ s: α ≈ 0.4237 (6% high); Euler-200 gives α ≈ 0.3941.
        Assert.True(Math.Abs(alpha - S) < discretisationBound, $"α = {alpha}");
        Assert.True(Math.Abs(beta - Mu) < 0.005, $"β = {beta}");

        // 3. Statistics: expected mean β and std α; allow 3 standard errors (α/√n for the mean, α/√(2n) for the std)
        // plus the discretisation error |β − μ|, |α − s| of step 2.
        double mean = xs.Average();
        double std = Math.Sqrt(xs.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        Assert.True(Math.Abs(mean - Mu) <= 3 * alpha / Math.Sqrt(n) + Math.Abs(beta - Mu), $"mean {mean}");
        Assert.True(Math.Abs(std - S) <= 3 * alpha / Math.Sqrt(2.0 * n) + Math.Abs(alpha - S), $"std {std}");
    }

    static Denoiser Nonlinear => (x, sigma, _) =>
    {
        using var scope = NewDisposeScope();
        var s = sigma.reshape(-1, 1, 1, 1);
        return (x.tanh() * 0.5 / (s + 1) + x.sin() * 0.1).MoveToOuterDisposeScope();
    };

    static float[] Run(long seed, SamplerSolver solver = SamplerSolver.Heun)
    {
        using var g = new Generator((ulong)seed);
        using var z = torch.randn(new long[] { 16, 2, 4, 4 }, generator: g);
        using var x = EdmSampler.Sample(Nonlinear, z, null, new SamplerOptions { Steps = 12, Solver = solver });
        return x.data<float>().ToArray();
    }

    [Fact]
    public void SameSeedIsBitIdenticalDifferentSeedsDiffer()
    {
        Assert.Equal(Run(5), Run(5));
        Assert.Equal(Run(5, SamplerSolver.Euler), Run(5, SamplerSolver.Euler));
        Assert.NotEqual(Run(5), Run(6));
        Assert.NotEqual(Run(5), Run(5, SamplerSolver.Euler));
    }

    const int Classes = 4;
    static double ClassMean(long y) => y == Classes ? 0.05 : 0.2 * y - 0.3;

    sealed class Recorder
    {
        public readonly List<(long[] XShape, ScalarType XType, long[] SigmaShape, ScalarType SigmaType, long[]? Labels, float[] Sigma, bool HalvesEqual)> Calls = new();

        public Denoiser Wrap => (x, sigma, labels) =>
        {
            using var scope = NewDisposeScope();
            long[]? ys = labels?.data<long>().ToArray();
            bool halves = true;
            if (x.shape[0] % 2 == 0)
            {
                long h = x.shape[0] / 2;
                halves = x[..(int)h].eq(x[(int)h..]).all().item<bool>();
            }
            Calls.Add((x.shape, x.dtype, sigma.shape, sigma.dtype, ys, sigma.data<float>().ToArray(), halves));
            var mean = labels is null ? torch.full(x.shape[0], 0.05) : ClassMeans(labels);
            return GaussianDenoiser(x, sigma, mean).MoveToOuterDisposeScope();
        };
    }

    static Tensor ClassMeans(Tensor labels) =>
        torch.tensor(labels.data<long>().ToArray().Select(ClassMean).ToArray());

    [Fact]
    public void GuidanceCombinesBothHalvesOfOneDoubledBatch()
    {
        const int n = 64, steps = 18;
        const double scale = 1.5;
        using var g = new Generator(3);
        using var z = torch.randn(new long[] { n, 1, 2, 2 }, generator: g);
        using var labels = torch.randint(0, Classes, new long[] { n }, generator: g);
        var rec = new Recorder();
        var options = new SamplerOptions { Steps = steps, GuidanceScale = scale, NullLabel = Classes };
        using var guided = EdmSampler.Sample(rec.Wrap, z, labels, options);

        // One call per evaluation: 2N − 1 for Heun, each on [x; x] with labels [y; null] and σ [σ; σ] in float32.
        Assert.Equal(2 * steps - 1, rec.Calls.Count);
        var ys = labels.data<long>().ToArray();
        var expectedLabels = ys.Concat(Enumerable.Repeat((long)Classes, n)).ToArray();
        var t = KarrasSchedule.Sigmas(steps);
        var expectedSigmas = new List<double>();
        for (int i = 0; i < steps; i++) { expectedSigmas.Add(t[i]); if (i < steps - 1) expectedSigmas.Add(t[i + 1]); }
        for (int c = 0; c < rec.Calls.Count; c++)
        {
            var call = rec.Calls[c];
            Assert.Equal(new long[] { 2 * n, 1, 2, 2 }, call.XShape);
            Assert.Equal(ScalarType.Float32, call.XType);
            Assert.Equal(new long[] { 2 * n }, call.SigmaShape);
            Assert.Equal(ScalarType.Float32, call.SigmaType);
            Assert.Equal(expectedLabels, call.Labels);
            Assert.True(call.HalvesEqual);
            Assert.All(call.Sigma, s => Assert.Equal((float)expectedSigmas[c], s));
        }

        // D_u + s·(D_c − D_u) of two Gaussian denoisers is the Gaussian denoiser of mean μ_u + s·(μ_c − μ_u).
        using var guidedMean = torch.tensor(ys.Select(y => ClassMean(Classes) + scale * (ClassMean(y) - ClassMean(Classes))).ToArray());
        Denoiser equivalent = (x, sigma, _) => GaussianDenoiser(x, sigma, guidedMean);
        using var expected = EdmSampler.Sample(equivalent, z, null, new SamplerOptions { Steps = steps });
        AssertClose(expected, guided, 1e-5);
    }

    [Fact]
    public void GuidanceOutsideItsIntervalIsOneConditionalCallOfHalfTheRows()
    {
        const int n = 16, steps = 12;
        const double scale = 3, low = 0.28, high = 20;
        using var g = new Generator(5);
        using var z = torch.randn(new long[] { n, 1, 2, 2 }, generator: g);
        using var labels = torch.randint(0, Classes, new long[] { n }, generator: g);
        var rec = new Recorder();
        var options = new SamplerOptions { Steps = steps, GuidanceScale = scale, NullLabel = Classes, GuidanceSigmaMin = low, GuidanceSigmaMax = high };
        using var sampled = EdmSampler.Sample(rec.Wrap, z, labels, options);

        var ys = labels.data<long>().ToArray();
        Assert.Equal(2 * steps - 1, rec.Calls.Count);
        int guided = 0;
        foreach (var call in rec.Calls)
        {
            double sigma = call.Sigma[0];
            bool inside = sigma > low && sigma <= high * (1 + 1e-6);
            Assert.Equal(inside ? 2 * n : n, call.XShape[0]);
            Assert.Equal(inside ? ys.Concat(Enumerable.Repeat((long)Classes, n)).ToArray() : ys, call.Labels);
            if (inside) guided++;
        }
        Assert.InRange(guided, 1, rec.Calls.Count - 1); // both kinds of step happened

        // Each step uses the guided Gaussian denoiser inside the interval, the conditional one outside.
        using var guidedMean = torch.tensor(ys.Select(y => ClassMean(Classes) + scale * (ClassMean(y) - ClassMean(Classes))).ToArray());
        using var conditionalMean = torch.tensor(ys.Select(ClassMean).ToArray());
        Denoiser equivalent = (x, sigma, _) =>
        {
            double s0 = sigma[0].item<float>();
            return GaussianDenoiser(x, sigma, s0 > low && s0 <= high * (1 + 1e-6) ? guidedMean : conditionalMean);
        };
        using var expected = EdmSampler.Sample(equivalent, z, null, new SamplerOptions { Steps = steps });
        AssertClose(expected, sampled, 1e-5);

        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerOptions { GuidanceSigmaMin = 1, GuidanceSigmaMax = 1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerOptions { GuidanceSigmaMin = -0.1 }.Validate());
    }

    [Fact]
    public void AnAlternatingShiftRollsEveryOtherEvaluationAndRollsItsOutputBack()
    {
        const int steps = 6, shift = 1;
        using var g = new Generator(9);
        using var z = torch.randn(new long[] { 3, 1, 4, 4 }, generator: g);
        // Position-independent: the shift changes nothing, bit for bit (a roll only permutes the values).
        using var plain = EdmSampler.Sample(Gaussian(Mu), z, null, new SamplerOptions { Steps = steps });
        using var shifted = EdmSampler.Sample(Gaussian(Mu), z, null, new SamplerOptions { Steps = steps, AlternatingShift = shift });
        Assert.Equal(plain.data<float>().ToArray(), shifted.data<float>().ToArray());

        // Position-dependent (a mean per pixel): the odd evaluations see the image rolled, so they use the mean map
        // rolled back; a denoiser that alternates the two maps itself gives the same samples.
        using var means = torch.linspace(-0.5, 0.5, 16, dtype: ScalarType.Float64).reshape(1, 1, 4, 4);
        using var rolledBack = means.roll(new long[] { -shift, -shift }, new long[] { -2, -1 });
        Tensor MeanDenoiser(Tensor x, Tensor sigma, Tensor map)
        {
            using var scope = NewDisposeScope();
            var s2 = sigma.reshape(-1, 1, 1, 1).square();
            return ((x * (S * S) + s2 * map.to(x.dtype)) / (s2 + S * S)).MoveToOuterDisposeScope();
        }
        using var byShift = EdmSampler.Sample((x, sigma, _) => MeanDenoiser(x, sigma, means), z, null,
            new SamplerOptions { Steps = steps, AlternatingShift = shift });
        int call = 0;
        using var alternating = EdmSampler.Sample((x, sigma, _) => MeanDenoiser(x, sigma, call++ % 2 == 1 ? rolledBack : means), z, null,
            new SamplerOptions { Steps = steps });
        AssertClose(alternating, byShift, 1e-6);
        using var unshifted = EdmSampler.Sample((x, sigma, _) => MeanDenoiser(x, sigma, means), z, null, new SamplerOptions { Steps = steps });
        Assert.False(unshifted.allclose(byShift, atol: 1e-3), "the shift must change a position-dependent denoiser's samples");
        // Below every σ of the schedule the shift never applies.
        using var neverShifted = EdmSampler.Sample((x, sigma, _) => MeanDenoiser(x, sigma, means), z, null,
            new SamplerOptions { Steps = steps, AlternatingShift = shift, AlternatingShiftSigmaMax = 1e-4 });
        Assert.Equal(unshifted.data<float>().ToArray(), neverShifted.data<float>().ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerOptions { AlternatingShift = -1 }.Validate());
    }

    [Fact]
    public void ScaleOneIsTheConditionalSamplerAndScaleZeroTheUnconditional()
    {
        const int n = 32;
        using var g = new Generator(11);
        using var z = torch.randn(new long[] { n, 1, 2, 2 }, generator: g);
        using var labels = torch.randint(0, Classes, new long[] { n }, generator: g);

        var plain = new Recorder();
        using var conditional = EdmSampler.Sample(plain.Wrap, z, labels, new SamplerOptions { Steps = 10 });
        var one = new Recorder();
        using var scaleOne = EdmSampler.Sample(one.Wrap, z, labels, new SamplerOptions { Steps = 10, GuidanceScale = 1, NullLabel = Classes });
        Assert.Equal(conditional.data<float>().ToArray(), scaleOne.data<float>().ToArray());
        Assert.All(one.Calls, c => Assert.Equal(n, c.XShape[0]));
        Assert.Equal(19, one.Calls.Count);

        using var nullLabels = torch.full(n, (long)Classes, dtype: ScalarType.Int64);
        using var unconditional = EdmSampler.Sample(new Recorder().Wrap, z, nullLabels, new SamplerOptions { Steps = 10 });
        using var scaleZero = EdmSampler.Sample(new Recorder().Wrap, z, labels, new SamplerOptions { Steps = 10, GuidanceScale = 0, NullLabel = Classes });
        AssertClose(unconditional, scaleZero, 1e-6);

        // Euler calls the denoiser once per step.
        var euler = new Recorder();
        using var e = EdmSampler.Sample(euler.Wrap, z, labels,
            new SamplerOptions { Steps = 10, Solver = SamplerSolver.Euler, GuidanceScale = 2, NullLabel = Classes });
        Assert.Equal(10, euler.Calls.Count);
    }

    sealed class SyncProgress : IProgress<int>
    {
        public readonly List<int> Seen = new();
        public void Report(int value) => Seen.Add(value);
    }

    [Fact]
    public void ProgressReportsEveryStep()
    {
        using var z = torch.zeros(2, 1, 1, 1);
        var p = new SyncProgress();
        using var _ = EdmSampler.Sample(Gaussian(Mu), z, null, new SamplerOptions { Steps = 5 }, p);
        Assert.Equal(new[] { 1, 2, 3, 4, 5 }, p.Seen);
    }

    [Fact]
    public void InvalidInputsAreRejectedWithClearMessages()
    {
        using var z = torch.zeros(4, 1, 2, 2);
        using var labels3 = torch.zeros(3, dtype: ScalarType.Int64);
        using var labels4 = torch.zeros(4, dtype: ScalarType.Int64);
        using var floatLabels = torch.zeros(4);
        var d = Gaussian(Mu);

        Assert.Contains("N = 4", Assert.Throws<ArgumentException>(() => EdmSampler.Sample(d, z, labels3, new SamplerOptions())).Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => EdmSampler.Sample(d, z, floatLabels, new SamplerOptions())).Message);
        var noLabels = Assert.Throws<ArgumentException>(() =>
            EdmSampler.Sample(d, z, null, new SamplerOptions { GuidanceScale = 1.5, NullLabel = 10 }));
        Assert.Contains("needs labels", noLabels.Message);
        var noNull = Assert.Throws<ArgumentException>(() => EdmSampler.Sample(d, z, labels4, new SamplerOptions { GuidanceScale = 1.5 }));
        Assert.Contains("NullLabel", noNull.Message);
        Assert.Contains("Steps", Assert.Throws<ArgumentOutOfRangeException>(() =>
            EdmSampler.Sample(d, z, null, new SamplerOptions { Steps = 0 })).Message);
        Assert.Contains("SigmaMax", Assert.Throws<ArgumentOutOfRangeException>(() =>
            EdmSampler.Sample(d, z, null, new SamplerOptions { SigmaMax = 0.001 })).Message);
        Assert.Contains("shaped like x", Assert.Throws<InvalidOperationException>(() =>
            EdmSampler.Sample((x, s, y) => torch.zeros(1), z, null, new SamplerOptions { Steps = 2 })).Message);
    }

    static void AssertClose(Tensor expected, Tensor actual, double tol)
    {
        var e = expected.data<float>().ToArray();
        var a = actual.data<float>().ToArray();
        Assert.Equal(e.Length, a.Length);
        double max = e.Zip(a, (u, v) => Math.Abs((double)u - v)).Max();
        Assert.True(max <= tol, $"max difference {max} > {tol}");
    }
}
