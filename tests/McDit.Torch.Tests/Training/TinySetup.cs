using McDit.Torch.Models;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

/// <summary>Tiny models and data that train in a second on two cores.</summary>
internal static class TinySetup
{
    public static DiffusionTransformerConfig Backbone(int classes = 3) => new()
    {
        InputSize = 8, InChannels = 2, PatchSize = 2, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = classes,
        DecoderDepth = 1, DecoderHiddenSize = 16, DecoderNumHeads = 2,
    };

    public static DiffusionTransformerConfig BackboneFor(TrainingMethod method, int classes = 3) =>
        method == TrainingMethod.DiT ? Backbone(classes) with { DecoderDepth = 0, DecoderHiddenSize = 0, DecoderNumHeads = 0 } : Backbone(classes);

    public static TrainerOptions Options(MethodOptions method, long seed = 7, double lr = 2e-3) => new()
    {
        Method = method, LearningRate = lr, Seed = seed, Device = "cpu", EmaDecay = 0.9,
    };

    /// <summary>A fixed data set: 4 class-dependent patterns with a little variation, in [-1, 1].</summary>
    public static (Tensor Images, Tensor Labels) Data(int n = 16, int classes = 3, long seed = 3)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)seed, torch.CPU);
        var labels = torch.arange(n, dtype: ScalarType.Int64) % classes;
        var grid = torch.linspace(-1, 1, 8);
        var pattern = torch.stack(new[] { grid.unsqueeze(0).expand(8, 8), grid.unsqueeze(1).expand(8, 8) });
        var images = pattern.unsqueeze(0).expand(n, 2, 8, 8) * (labels.to_type(ScalarType.Float32) - 1).reshape(-1, 1, 1, 1) * 0.8f
            + 0.05f * torch.randn(new long[] { n, 2, 8, 8 }, generator: g);
        return (images.clamp(-1, 1).MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    /// <summary>Every method configuration the objective supports.</summary>
    public static IEnumerable<object[]> AllMethods()
    {
        yield return new object[] { "DiT", MethodOptions.For(TrainingMethod.DiT) };
        yield return new object[] { "MaskDiT", MethodOptions.For(TrainingMethod.MaskDiT) };
        yield return new object[] { "MC-DiT", MethodOptions.For(TrainingMethod.McDiT) };
        yield return new object[] { "MC-DiT encoder", MethodOptions.For(TrainingMethod.McDiT) with { CleanInto = CleanInto.Encoder } };
        yield return new object[] { "MC-DiT all-clean, decoder+encoder branches", MethodOptions.For(TrainingMethod.McDiT) with { ReconstructionTarget = ReconstructionTarget.AllClean, BranchScope = BranchScope.DecoderAndEncoder } };
        yield return new object[] { "MC-DiT, clean branch on a quarter of the batch", MethodOptions.For(TrainingMethod.McDiT) with { CleanBranchFraction = 0.25 } };
        yield return new object[] { "MC-DiT clean-only, no branches", MethodOptions.For(TrainingMethod.McDiT) with { ReconstructionTarget = ReconstructionTarget.CleanOnly, NoisyBranch = false, CleanBranch = false } };
    }
}
