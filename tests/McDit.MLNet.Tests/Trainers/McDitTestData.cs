using McDit.MLNet.Trainers;
using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.MLNet.Tests.Trainers;

/// <summary>Tiny in-memory image sets and a tiny network, so every training run takes a fraction of a second.</summary>
static class McDitTestData
{
    public const int Side = 8, Classes = 3;

    public sealed class KeyRow
    {
        [VectorType(1, Side, Side)] public float[] Image { get; set; } = Array.Empty<float>();
        /// <summary>0-based in the POCO: LoadFromEnumerable stores raw key value + 1 (values ≥ Classes become missing).</summary>
        [KeyType(Classes)] public uint Label { get; set; }
    }

    public sealed class IntRow
    {
        [VectorType(1, Side, Side)] public float[] Image { get; set; } = Array.Empty<float>();
        public int Label { get; set; }
    }

    public sealed class ImageOnlyRow
    {
        [VectorType(1, Side, Side)] public float[] Image { get; set; } = Array.Empty<float>();
    }

    public sealed class ClassRow
    {
        public int Label { get; set; }
    }

    public sealed class SeededClassRow
    {
        public int Label { get; set; }
        public long Seed { get; set; }
    }

    public sealed class EmptyRow
    {
        public int Dummy { get; set; }
    }

    public sealed class Generated
    {
        [VectorType(1, Side, Side)] public float[] GeneratedPixels { get; set; } = Array.Empty<float>();
    }

    /// <summary>Class c: a bright horizontal band at rows 2c..2c+2, values in [0, 1].</summary>
    public static float[] Pattern(int c, Random random)
    {
        var image = new float[Side * Side];
        for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
                image[y * Side + x] = (y / 2 == c ? 0.9f : 0.1f) + 0.05f * (float)random.NextDouble();
        return image;
    }

    public static IDataView KeyData(MLContext ml, int rows = 12)
    {
        var random = new Random(3);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows)
            .Select(i => new KeyRow { Image = Pattern(i % Classes, random), Label = (uint)(i % Classes) }).ToList());
    }

    public static IDataView IntData(MLContext ml, int rows = 12, Func<int, int>? label = null)
    {
        var random = new Random(4);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows)
            .Select(i => new IntRow { Image = Pattern(i % Classes, random), Label = label?.Invoke(i) ?? i % Classes }).ToList());
    }

    public static IDataView Classes_(MLContext ml, params int[] labels) =>
        ml.Data.LoadFromEnumerable(labels.Select(l => new ClassRow { Label = l }).ToList());

    public static DiffusionTransformerConfig TinyNetwork => new()
    {
        PatchSize = 2, HiddenSize = 32, Depth = 1, NumHeads = 2,
        DecoderDepth = 1, DecoderHiddenSize = 32, DecoderNumHeads = 2,
    };

    /// <summary>EncodeLatents (the identity) → MaskPatches → the trainer on its "Latent" column: a whole McDit training pipeline.</summary>
    public static EstimatorChain<McDit.MLNet.Generation.McDitModel> EncodeMaskTrainPipeline(MLContext ml)
    {
        var options = Options();
        options.ImageColumnName = "Latent";
        return ml.McDit().Transforms.EncodeLatents("Latent", "Image")
            .Append(ml.McDit().Transforms.MaskPatches("Patches", "Latent", patchSize: 2))
            .Append(ml.McDit().Trainers.DiffusionTransformer(options));
    }

    public static McDitTrainer.Options Options(int steps = 3) => new()
    {
        ModelConfig = TinyNetwork,
        NumberOfSteps = steps,
        BatchSize = 4,
        LearningRate = 1e-3,
        EmaDecay = 0, // sample with the trained weights themselves
        Seed = 1,
        Device = "cpu",
        SamplingSteps = 2,
        Solver = SamplerSolver.Euler,
        GenerationBatchSize = 4,
        LoggingInterval = 1,
    };
}
