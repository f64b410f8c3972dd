using McDit.Torch.Models;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Reliability.Host;

/// <summary>The tiny network and data every seed file is made from (a fraction of a second to train).</summary>
static class Tiny
{
    public const int Side = 8, Classes = 3;

    public static DiffusionTransformerConfig Backbone(TrainingMethod method) => new()
    {
        InputSize = Side, InChannels = 1, PatchSize = 4, HiddenSize = 32, Depth = 1, NumHeads = 2, NumClasses = Classes,
        DecoderDepth = method == TrainingMethod.DiT ? 0 : 1, DecoderHiddenSize = method == TrainingMethod.DiT ? 0 : 32,
        DecoderNumHeads = method == TrainingMethod.DiT ? 0 : 2,
    };

    public static TrainerOptions Options(TrainingMethod method) => new()
    {
        Method = MethodOptions.For(method), LearningRate = 1e-3, Seed = 1, Device = "cpu", EmaDecay = 0.9,
    };

    /// <summary>One training step on a fixed random batch.</summary>
    public static void Step(DiffusionTrainer trainer, int step)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)(100 + step), torch.CPU);
        var images = torch.rand(new long[] { 4, 1, Side, Side }, generator: g) * 2 - 1;
        var labels = torch.tensor(new long[] { 0, 1, 2, step % Classes });
        trainer.Step(images, labels);
    }
}
