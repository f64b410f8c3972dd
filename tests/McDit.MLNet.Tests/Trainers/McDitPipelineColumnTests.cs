using McDit.MLNet.Generation;
using McDit.MLNet.Trainers;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;
using static McDit.MLNet.Tests.Trainers.McDitTestData;

namespace McDit.MLNet.Tests.Trainers;

/// <summary>
/// Column options of a pipeline that ends in the trainer fail before training (not after it, when ML.NET passes the
/// training data through the trained model), and a saved training pipeline generates from a view of labels only.
/// </summary>
public class McDitPipelineColumnTests : IDisposable
{
    readonly string _zip = Path.Combine(Path.GetTempPath(), $"mcdit-{Guid.NewGuid():N}-pipeline.zip");

    public sealed class SeededKeyRow
    {
        [VectorType(1, Side, Side)] public float[] Image { get; set; } = Array.Empty<float>();
        [KeyType(Classes)] public uint Label { get; set; }
        public long Seed { get; set; }
    }

    public sealed class KeySeedRow
    {
        [VectorType(1, Side, Side)] public float[] Image { get; set; } = Array.Empty<float>();
        [KeyType(Classes)] public uint Label { get; set; }
        [KeyType(100)] public uint Seed { get; set; }
    }

    public sealed class LabelOnlyRow
    {
        [KeyType(Classes)] public uint Label { get; set; }
    }

    static (MLContext Ml, List<string> Steps) Context()
    {
        var ml = new MLContext(seed: 1);
        var steps = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("McDit: step")) lock (steps) steps.Add(e.Message); };
        return (ml, steps);
    }

    [Fact]
    public void AMissingSeedColumn_FailsInGetOutputSchemaAndFit_BeforeAnyStep()
    {
        var (ml, steps) = Context();
        var data = KeyData(ml);
        var options = Options();
        options.SeedColumnName = "Seed";
        var trainer = ml.McDit().Trainers.DiffusionTransformer(options);

        // A chain checks its schema before fitting anything: the trainer's GetOutputSchema says no.
        var chain = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image").Append(trainer).Fit(data));
        Assert.Contains("Seed column 'Seed' (McDitTrainer.Options.SeedColumnName) was not found", chain.Message);
        Assert.Contains("WithSampling(seedColumnName", chain.Message); // says how to read seeds only when generating
        Assert.Contains(nameof(McDitTrainer.GetOutputSchema), chain.StackTrace);
        Assert.Contains("Seed column 'Seed'", Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(data)).Message);
        Assert.Empty(steps);
    }

    [Fact]
    public void ASeedColumnThatIsAKey_IsRejectedBeforeTraining()
    {
        var (ml, steps) = Context();
        var random = new Random(5);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8)
            .Select(i => new KeySeedRow { Image = Pattern(i % Classes, random), Label = (uint)(i % Classes), Seed = (uint)i }).ToList());
        var options = Options();
        options.SeedColumnName = "Seed";
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Trainers.DiffusionTransformer(options).Fit(data));
        Assert.Contains("Seed column 'Seed'", e.Message);
        Assert.Contains("not a key", e.Message);
        Assert.Empty(steps);
    }

    [Fact]
    public void ASeedColumnInTheTrainingData_TrainsAndSeedsTheModelsRows()
    {
        var (ml, _) = Context();
        var random = new Random(6);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8)
            .Select(i => new SeededKeyRow { Image = Pattern(i % Classes, random), Label = (uint)(i % Classes), Seed = 1000 + i % 2 }).ToList());
        var options = Options(steps: 2);
        options.SeedColumnName = "Seed";
        var model = ml.McDit().Transforms.MaskPatches("Patches", "Image").Append(ml.McDit().Trainers.DiffusionTransformer(options)).Fit(data);
        Assert.Equal("Seed", model.LastTransformer.SeedColumnName);
        var pixels = model.Transform(data).GetColumn<float[]>("GeneratedPixels").ToArray();
        Assert.Equal(8, pixels.Length);
        Assert.Equal(pixels[0], pixels[6]); // same class (0) and seed (1000)
        Assert.NotEqual(pixels[0], pixels[3]); // same class, seed 1001
    }

    [Theory]
    [InlineData("Label", null)]
    [InlineData(null, "Label")]
    [InlineData("Seed", null)]
    public void AGeneratedColumnNamedLikeAnInputItReads_IsRejectedWhenTheTrainerIsMade(string? image, string? pixels)
    {
        var options = Options();
        options.SeedColumnName = "Seed";
        if (image is not null) options.GeneratedImageColumnName = image;
        if (pixels is not null) options.GeneratedPixelsColumnName = pixels;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext().McDit().Trainers.DiffusionTransformer(options));
        Assert.Contains(image is not null ? "GeneratedImageColumnName" : "GeneratedPixelsColumnName", e.Message);
        Assert.Contains(image == "Seed" ? "seed column ('Seed')" : "label column ('Label')", e.Message);
    }

    [Fact]
    public void ASavedTrainingPipeline_GeneratesFromAViewOfLabelsOnly()
    {
        var (ml, _) = Context();
        var data = KeyData(ml);
        var model = EncodeMaskTrainPipeline(ml).Fit(data);
        ml.Model.Save(model, data.Schema, _zip);

        var labels = ml.Data.LoadFromEnumerable(new[] { 0u, 1u, 2u, 1u }.Select(l => new LabelOnlyRow { Label = l }).ToList());
        var loaded = new MLContext().Model.Load(_zip, out _);
        var generated = loaded.Transform(labels);
        // The training-only transforms passed the view through: no latent or mask columns, just the generated ones.
        Assert.Null(generated.Schema.GetColumnOrNull("Latent"));
        Assert.Null(generated.Schema.GetColumnOrNull("PatchesMask"));
        var pixels = generated.GetColumn<float[]>("GeneratedPixels").ToArray();
        Assert.Equal(4, pixels.Length);
        Assert.Equal(model.LastTransformer.Transform(labels).GetColumn<float[]>("GeneratedPixels").ToArray(), pixels);
        // With the image column there, the same chain still masks and encodes.
        var full = loaded.Transform(data);
        Assert.NotNull(full.Schema.GetColumnOrNull("PatchesMask"));
        Assert.NotNull(full.Schema.GetColumnOrNull("Latent"));
    }

    [Fact]
    public void TheTransformsStillRejectAnInputColumnOfTheWrongType()
    {
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        var masker = ml.McDit().Transforms.MaskPatches("Patches", "Image", patchSize: 2).Fit(data);
        var encoder = ml.McDit().Transforms.EncodeLatents("Latent", "Image").Fit(data);
        var wrong = ml.Data.LoadFromEnumerable(new[] { new TextImageRow { Image = "not pixels" } });
        Assert.Contains("Input column 'Image' must be a known-size vector", Assert.Throws<ArgumentOutOfRangeException>(() => masker.Transform(wrong)).Message);
        Assert.Contains("Image column 'Image' has type String", Assert.Throws<ArgumentOutOfRangeException>(() => encoder.Transform(wrong)).Message);
        // The estimators require the column.
        var labels = ml.Data.LoadFromEnumerable(new[] { new LabelOnlyRow { Label = 1 } });
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Transforms.MaskPatches("Patches", "Image").Fit(labels));
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Transforms.EncodeLatents("Latent", "Image").Fit(labels));
    }

    public sealed class TextImageRow
    {
        public string Image { get; set; } = "";
    }

    public void Dispose()
    {
        if (File.Exists(_zip)) File.Delete(_zip);
    }
}
