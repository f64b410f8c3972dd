using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Models;

/// <summary>
/// Pins our MaskDiT configuration to Anima-Lab/MaskDiT (models/maskdit.py, train_utils/loss.py, sample.py) with the
/// golden fixture: masked training forward, its loss, the unmasked forward and the EDM Heun sampler with and without guidance.
/// </summary>
public sealed class MaskDiTGoldenTests : IDisposable
{
    readonly McDit.Torch.IO.SafeTensorsContent _fixture = TestTensors.Fixture("maskdit_tiny_golden.safetensors");
    readonly MaskedDiffusionTransformer _model;
    IReadOnlyDictionary<string, Tensor> T => _fixture.Tensors;

    public MaskDiTGoldenTests()
    {
        _model = new MaskedDiffusionTransformer(DiTBackboneTests.FixtureConfig(_fixture.Metadata["config"]));
        var weights = TestTensors.WeightsOnly(T);
        // MaskDiT embeds labels with a bias-free Linear over one-hot vectors (all zeros = null label):
        // that is a table of C + 1 rows whose null row is zero.
        var linear = weights["y_embedder.embedding_table.weight"]; // [D, C]
        weights["y_embedder.embedding_table.weight"] = torch.cat(new[] { linear.t(), torch.zeros(1, linear.shape[0]) }, 0);
        Checkpoint.LoadInto(_model, weights, "maskdit fixture");
    }

    /// <summary>One-hot rows → class indices, an all-zero row → the null label.</summary>
    Tensor Labels(Tensor oneHot)
    {
        var isNull = oneHot.sum(1).eq(0);
        return torch.where(isNull, torch.full_like(oneHot.argmax(1), _model.NullLabel), oneHot.argmax(1));
    }

    [Fact]
    public void UnmaskedForwardMatches()
    {
        using var scope = NewDisposeScope();
        var x = T["input.images"] + T["input.eps"] * T["input.sigma"].reshape(-1, 1, 1, 1);
        var denoiser = ModelDenoiser.Create(_model);
        var d = denoiser(x, T["input.sigma"], Labels(T["input.labels_onehot"]));
        Assert.True(TestTensors.RelativeError(d, T["eval.D"]) < 1e-5, $"relative error {TestTensors.RelativeError(d, T["eval.D"])}");
    }

    [Fact]
    public void MaskedTrainingForwardAndLossMatch()
    {
        using var scope = NewDisposeScope();
        _model.train();
        var sigma = T["input.sigma"];
        var mask = PatchMask.FromKeptIndices(T["mask.ids_keep"], 16);
        Assert.True(TestTensors.Same(mask.Mask, T["mask.mask"]));
        var objective = new DiffusionObjective(MethodOptions.For(TrainingMethod.MaskDiT));
        var draws = new DiffusionObjective.Draws(sigma, T["input.eps"], Labels(T["input.labels_onehot"]), mask);
        var (loss, _) = objective.Loss(_model, T["input.images"], draws);
        Assert.True(TestTensors.RelativeError(loss, T["train.loss"]) < 1e-5, $"loss {loss.str()} vs {T["train.loss"].str()}");

        // The masked forward itself: encoder on kept tokens only, [MASK] tokens in the decoder.
        var edm = new EdmPreconditioning();
        var s = sigma.reshape(-1, 1, 1, 1);
        var x = T["input.images"] + T["input.eps"] * s;
        var c = _model.Condition(edm.CNoise(sigma), Labels(T["input.labels_onehot"]));
        var kept = _model.Encode(mask.GatherKept(_model.Embed(edm.CIn(s) * x)), c);
        var d = edm.CSkip(s) * x + edm.COut(s) * _model.Unpatchify(_model.Decode(kept, c, mask, null));
        Assert.True(TestTensors.RelativeError(d, T["train.D"]) < 1e-5, $"relative error {TestTensors.RelativeError(d, T["train.D"])}");
        mask.Dispose();
    }

    [Theory]
    [InlineData(1.0, "sample.out")]
    [InlineData(1.5, "sample.cfg_out")]
    public void HeunSamplerMatches(double guidance, string expected)
    {
        using var scope = NewDisposeScope();
        var options = new SamplerOptions { Steps = 6, GuidanceScale = guidance, NullLabel = _model.NullLabel };
        var samples = EdmSampler.Sample(ModelDenoiser.Create(_model), T["sample.latents"], Labels(T["sample.labels_onehot"]), options);
        Assert.True(TestTensors.RelativeError(samples, T[expected]) < 1e-4, $"relative error {TestTensors.RelativeError(samples, T[expected])}");
    }

    public void Dispose()
    {
        _model.Dispose();
        _fixture.Dispose();
    }
}
