using McDit.Torch.Diffusion;
using McDit.Torch.Interop;
using McDit.Torch.Models;
using McDit.Torch.Tests.Interop;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Diffusion;

/// <summary>
/// DiT's DDPM sampler and the VP→EDM denoiser: the respaced schedule, DiT's guidance convention on the golden fixture, and
/// sampling from a network that knows the exact noise of Gaussian data (the samples must have the data's mean and spread).
/// </summary>
public sealed class DdpmSamplerTests
{
    [Fact]
    public void RespacingKeeps250StepsFrom0To999()
    {
        var t = DdpmSchedule.SpaceTimesteps(1000, 250);
        Assert.Equal(250, t.Length);
        Assert.Equal(0, t[0]);
        Assert.Equal(999, t[^1]);
        Assert.All(t.Zip(t.Skip(1)), p => Assert.InRange(p.Second - p.First, 4, 5));
        Assert.Equal(Enumerable.Range(0, 1000), DdpmSchedule.SpaceTimesteps(1000, 1000));
        var s = new DdpmSchedule(250);
        // DiT's linear schedule: ᾱ_999 = 4.036e-5, so σ_999 ≈ 157.4; σ_0 = √(β₀ / (1 − β₀)) ≈ 0.0100.
        Assert.InRange(s.BaseAlphasCumprod[999], 4.03e-5, 4.04e-5);
        Assert.InRange(s.Sigma(0), 0.0100, 0.01001);
        // The respaced steps keep ᾱ: the product of (1 − β) over the kept steps is ᾱ of the last kept timestep.
        Assert.Equal(s.BaseAlphasCumprod[999], s.Betas.Aggregate(1.0, (p, b) => p * (1 - b)), 12);
        Assert.Equal(317.0, s.TimestepOf(s.Sigma(317)), 9);
    }

    [TorchFact]
    public void RespacingRoundsAsDiTsPythonDoes()
    {
        foreach (var (total, steps) in new[] { (1000, 250), (1000, 100), (1000, 27), (1000, 50) })
        {
            var expected = PythonTorch.Run("spacing", total.ToString(), steps.ToString()).Trim();
            Assert.Equal(expected, string.Join(",", DdpmSchedule.SpaceTimesteps(total, steps)));
        }
    }

    [Fact]
    public void GuidanceFollowsDiTsForwardWithCfgOnTheGoldenFixture()
    {
        using var fixture = TestTensors.Fixture("dit_tiny_golden.safetensors");
        var t = fixture.Tensors;
        using var model = new MaskedDiffusionTransformer(Models.DiTBackboneTests.FixtureConfig(fixture.Metadata["config"]) with { Formulation = DiffusionFormulation.VpEpsilon });
        McDit.Torch.Training.Checkpoint.LoadInto(model, TestTensors.WeightsOnly(t), "dit fixture");
        model.eval();
        using var scope = NewDisposeScope();
        var x = t["input.x"][..2];
        var steps = t["input.t"][..2];
        var guided = DdpmSampler.GuidedOutput(ModelDenoiser.CreateDdpm(model), x, steps, torch.tensor(new long[] { 1, 7 }), 4.0, 10, guidedChannels: 3);
        double error = TestTensors.RelativeError(guided, t["cfg.output"][..2]);
        Assert.True(error < 1e-5, $"relative error {error}");
        // Guiding all four channels is something else.
        var all = DdpmSampler.GuidedOutput(ModelDenoiser.CreateDdpm(model), x, steps, torch.tensor(new long[] { 1, 7 }), 4.0, 10, guidedChannels: 4);
        Assert.True(TestTensors.RelativeError(all, t["cfg.output"][..2]) > 1e-3);
    }

    // Data: x₀ ~ N(μ_y, s²) per element, μ = −1 for class 0 and +1 for class 1. The exact noise prediction at timestep t is
    // ε*(x_t) = √(1 − ᾱ)·(x_t − √ᾱ·μ) / (ᾱ·s² + 1 − ᾱ).
    const double S = 0.5;

    static Tensor ExactEps(Tensor x, Tensor timesteps, Tensor? labels, double[] alphasCumprod)
    {
        using var scope = NewDisposeScope();
        var ab = torch.tensor(timesteps.cpu().data<float>().ToArray().Select(v => alphasCumprod[(int)Math.Round(v)]).ToArray(), dtype: ScalarType.Float64)
            .reshape(-1, 1, 1, 1);
        var mu = (labels!.to_type(ScalarType.Float64) * 2 - 1).reshape(-1, 1, 1, 1);
        var eps = (1 - ab).sqrt() * (x.to_type(ScalarType.Float64) - ab.sqrt() * mu) / (ab * S * S + 1 - ab);
        return eps.to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    static (double Mean0, double Mean1, double Std) Moments(Tensor samples, int perClass)
    {
        using var scope = NewDisposeScope();
        var a = samples[..perClass].to_type(ScalarType.Float64);
        var b = samples[perClass..].to_type(ScalarType.Float64);
        double std = Math.Sqrt(((a - a.mean()).square().mean().item<double>() + (b - b.mean()).square().mean().item<double>()) / 2);
        return (a.mean().item<double>(), b.mean().item<double>(), std);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SamplesFromTheExactNoiseHaveTheDatasMeanAndSpread(bool learnedSigma)
    {
        const int perClass = 256;
        var schedule = new DdpmSchedule(250);
        using var scope = NewDisposeScope();
        using var g = new Generator(11, torch.CPU);
        var labels = torch.cat(new[] { torch.zeros(perClass, ScalarType.Int64), torch.ones(perClass, ScalarType.Int64) });
        var latents = torch.randn(new long[] { 2 * perClass, 1, 4, 4 }, generator: g);
        // With learned sigma, v = −1 picks the posterior variance β̃ (the reverse kernel of Gaussian data, nearly).
        DdpmNetwork network = (x, t, y) =>
        {
            var eps = ExactEps(x, t, y, schedule.BaseAlphasCumprod);
            return learnedSigma ? torch.cat(new[] { eps, torch.full_like(eps, -1f) }, 1) : eps;
        };
        var samples = DdpmSampler.Sample(network, latents, labels, schedule, like => torch.randn(like.shape, generator: g));
        var (m0, m1, std) = Moments(samples, perClass);
        Assert.InRange(m0, -1.05, -0.95);
        Assert.InRange(m1, 0.95, 1.05);
        // β̃ is the exact posterior variance given x₀; FIXED_LARGE (β) adds a little, as in DiT.
        Assert.InRange(std, learnedSigma ? 0.47 : 0.48, learnedSigma ? 0.53 : 0.56);
    }

    [Fact]
    public void EdmHeunOnTheVpDenoiserSamplesTheSameData()
    {
        // D(x; σ) = x − σ·ε(x / √(1 + σ²), t(σ)) with the exact ε of a continuous-time VP model at ᾱ = 1 / (1 + σ²).
        const int perClass = 256;
        using var scope = NewDisposeScope();
        using var g = new Generator(12, torch.CPU);
        var labels = torch.cat(new[] { torch.zeros(perClass, ScalarType.Int64), torch.ones(perClass, ScalarType.Int64) });
        var latents = torch.randn(new long[] { 2 * perClass, 1, 4, 4 }, generator: g);
        Denoiser d = (x, sigma, y) =>
        {
            var s = sigma.to_type(ScalarType.Float64).reshape(-1, 1, 1, 1);
            var ab = 1 / (1 + s.square());
            var xt = x.to_type(ScalarType.Float64) * ab.sqrt();
            var mu = (y!.to_type(ScalarType.Float64) * 2 - 1).reshape(-1, 1, 1, 1);
            var eps = (1 - ab).sqrt() * (xt - ab.sqrt() * mu) / (ab * S * S + 1 - ab);
            return (x.to_type(ScalarType.Float64) - s * eps).to_type(ScalarType.Float32);
        };
        var samples = EdmSampler.Sample(d, latents, labels, new SamplerOptions { Steps = 40, SigmaMin = 0.01 });
        var (m0, m1, std) = Moments(samples, perClass);
        Assert.InRange(m0, -1.05, -0.95);
        Assert.InRange(m1, 0.95, 1.05);
        Assert.InRange(std, 0.47, 0.53);
    }

    [Fact]
    public void TheVpDenoiserCallsTheNetworkAtTheTimestepOfSigma()
    {
        using var fixture = TestTensors.Fixture("dit_tiny_golden.safetensors");
        var t = fixture.Tensors;
        using var model = new MaskedDiffusionTransformer(Models.DiTBackboneTests.FixtureConfig(fixture.Metadata["config"]) with { Formulation = DiffusionFormulation.VpEpsilon });
        McDit.Torch.Training.Checkpoint.LoadInto(model, TestTensors.WeightsOnly(t), "dit fixture");
        model.eval();
        var schedule = new DdpmSchedule(1000);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = t["input.x"];
        var y = torch.tensor(new long[] { 2, 5, 10 });
        var steps = new[] { 10, 400, 999 };
        var sigma = torch.tensor(steps.Select(s => (float)schedule.Sigma(s)).ToArray());
        var d = ModelDenoiser.Create(model)(x, sigma, y);
        var s4 = sigma.reshape(-1, 1, 1, 1);
        var eps = model.call(x / (s4.square() + 1).sqrt(), torch.tensor(steps.Select(v => (float)v).ToArray()), y)[.., ..4];
        double error = TestTensors.RelativeError(d, x - s4 * eps);
        Assert.True(error < 1e-4, $"relative error {error}");
        Assert.Throws<ArgumentException>(() => ModelDenoiser.CreateDdpm(new MaskedDiffusionTransformer(model.Config with { Formulation = DiffusionFormulation.Edm })));
    }
}
