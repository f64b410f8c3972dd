using McDit.Torch.IO;
using McDit.Torch.Vae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Vae;

/// <summary>
/// Pins <see cref="AutoencoderKL"/> to huggingface/diffusers' AutoencoderKL with the golden fixture (a two-level
/// version of the SD VAE, weights under diffusers' names, config in the metadata).
/// </summary>
public sealed class AutoencoderKLGoldenTests : IDisposable
{
    static readonly string[] RecordedData = { "input.", "encode.", "decode." };
    readonly SafeTensorsContent _fixture = TestTensors.Fixture("vae_tiny_golden.safetensors");
    readonly AutoencoderKL _vae;
    IReadOnlyDictionary<string, Tensor> T => _fixture.Tensors;

    public AutoencoderKLGoldenTests()
    {
        var config = AutoencoderKLConfig.FromJson(_fixture.Metadata["config"], "vae fixture");
        _vae = new AutoencoderKL(config);
        _vae.LoadWeights(T, "vae fixture", RecordedData);
        _vae.eval();
    }

    [Fact]
    public void FixtureConfigReadsDiffusersFieldNames()
    {
        Assert.Equal(new[] { 32, 64 }, _vae.Config.BlockOutChannels);
        Assert.Equal(1, _vae.Config.LayersPerBlock);
        Assert.Equal(4, _vae.Config.LatentChannels);
        Assert.Equal(16, _vae.Config.SampleSize);
        Assert.Equal(0.18215, _vae.Config.ScalingFactor);
        Assert.Equal(2, _vae.Config.DownsamplingFactor);
    }

    [Fact]
    public void EncodeAndDecodeMatchDiffusers()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (mean, logVar) = _vae.Encode(T["input.x"]);
        Assert.True(TestTensors.RelativeError(mean, T["encode.mean"]) < 1e-5, $"mean: relative error {TestTensors.RelativeError(mean, T["encode.mean"])}");
        Assert.True(TestTensors.RelativeError(logVar, T["encode.logvar"]) < 1e-5, $"logvar: relative error {TestTensors.RelativeError(logVar, T["encode.logvar"])}");
        var decoded = _vae.Decode(T["encode.mean"]);
        Assert.True(TestTensors.RelativeError(decoded, T["decode.out"]) < 1e-5, $"decode: relative error {TestTensors.RelativeError(decoded, T["decode.out"])}");
    }

    [Fact]
    public void EncodeLatentsIsReproduciblePerSeedAndScaled()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = T["input.x"];
        Tensor Draw(long seed) { using var g = new Generator((ulong)seed, torch.CPU); return _vae.EncodeLatents(x, g); }
        var a = Draw(7);
        Assert.True(TestTensors.Same(a, Draw(7)));
        Assert.False(TestTensors.Same(a, Draw(8)));
        Assert.Equal(new long[] { 2, 4, 8, 8 }, a.shape);
        // Without a generator: the posterior mean, scaled.
        Assert.True(TestTensors.RelativeError(_vae.EncodeLatents(x), T["encode.mean"] * 0.18215) < 1e-5);
        // A draw lies around the mean with the posterior's spread.
        var z = a / 0.18215;
        var standardised = (z - T["encode.mean"]) / (0.5 * T["encode.logvar"]).exp();
        Assert.InRange(standardised.std().item<float>(), 0.8f, 1.2f);
        // DecodeLatents undoes the scaling.
        Assert.True(TestTensors.RelativeError(_vae.DecodeLatents(T["encode.mean"] * 0.18215), T["decode.out"]) < 1e-5);
    }

    public void Dispose()
    {
        _vae.Dispose();
        _fixture.Dispose();
    }
}
