using McDit.MLNet.Generation;
using McDit.MLNet.Trainers;
using McDit.Torch.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Xunit;
using static McDit.MLNet.Tests.Trainers.McDitTestData;

namespace McDit.MLNet.Tests.Trainers;

public class McDitTrainerTests
{
    static float[][] Pixels(IDataView view, string column = "GeneratedPixels") =>
        view.GetColumn<float[]>(column).ToArray();

    // MLContext.CancelExecution is internal to ML.NET 5 (ML.NET's own tools call it); reach it by reflection.
    static void CancelExecution(MLContext ml)
    {
        const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        var method = typeof(MLContext).GetMethods(flags).FirstOrDefault(m => m.Name.EndsWith("CancelExecution", StringComparison.Ordinal) && m.GetParameters().Length == 0)
            ?? typeof(MLContext).GetInterfaces().SelectMany(i => i.GetMethods()).First(m => m.Name == "CancelExecution");
        method.Invoke(ml, null);
    }

    static string TempPath(string name) => Path.Combine(Path.GetTempPath(), $"mcdit-{Guid.NewGuid():N}-{name}");

    [Fact]
    public void EndToEnd_VectorsThroughMaskerAndTrainer_SaveLoadInFreshContext_GeneratesSameImages()
    {
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        var model = EncodeMaskTrainPipeline(ml).Fit(data);
        var generator = model.LastTransformer;
        Assert.Equal(3, generator.TrainedSteps);
        Assert.Equal(Classes, generator.NumberOfClasses);
        Assert.Equal(TrainingMethod.McDiT, generator.Method);

        var path = TempPath("model.zip");
        try
        {
            ml.Model.Save(model, data.Schema, path);
            var loaded = new MLContext().Model.Load(path, out var schema);
            Assert.NotNull(schema.GetColumnOrNull("Label"));

            var before = model.Transform(data);
            var after = loaded.Transform(data);
            var expected = Pixels(before);
            var actual = Pixels(after);
            Assert.Equal(12, actual.Length);
            Assert.Equal(expected, actual); // bit-identical for the same seeds
            Assert.All(actual, p =>
            {
                Assert.Equal(Side * Side, p.Length);
                Assert.All(p, v => Assert.InRange(v, 0f, 1f)); // the data's pixel range (InputMinimum..InputMaximum)
            });
            Assert.Contains(actual, p => p.Distinct().Count() > 1);

            var imageColumn = after.Schema["GeneratedImage"];
            var imageType = Assert.IsType<ImageDataViewType>(imageColumn.Type);
            Assert.Equal((Side, Side), (imageType.Height, imageType.Width));
            var images = after.GetColumn<MLImage>(imageColumn).Take(2).ToArray();
            Assert.All(images, image =>
            {
                Assert.Equal((Side, Side), (image.Height, image.Width));
                Assert.Equal(MLPixelFormat.Bgra32, image.PixelFormat);
            });
            // Grey samples are replicated to B, G and R, and match the pixel column.
            var px = images[0].Pixels;
            Assert.Equal(px[0], px[1]);
            Assert.Equal(px[1], px[2]);
            Assert.Equal((byte)Math.Round(actual[0][0] * 255.0), px[2]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EndToEnd_MLImagesThroughExtractPixels_AndMLImagesDirectly()
    {
        var ml = new MLContext(seed: 2);
        // Lazy rows: every cursor gets fresh MLImages, as LoadImages gives (ExtractPixels disposes the images it reads).
        var rows = Enumerable.Range(0, 8).Select(i =>
        {
            var grey = Pattern(i % Classes, new Random(i));
            var bgra = new byte[Side * Side * 4];
            for (int p = 0; p < grey.Length; p++)
            {
                byte v = (byte)(grey[p] * 255);
                bgra[4 * p] = v; bgra[4 * p + 1] = (byte)(255 - v); bgra[4 * p + 2] = v; bgra[4 * p + 3] = 255;
            }
            return new ImageRow { Image = MLImage.CreateFromPixels(Side, Side, MLPixelFormat.Bgra32, bgra), Label = i % Classes };
        });
        var data = ml.Data.LoadFromEnumerable(rows);

        // images → ExtractPixels (CHW, scaled to [0, 1]) → masker → trainer
        var options = Options(steps: 2);
        options.ImageColumnName = "Pixels";
        options.NumberOfClasses = Classes;
        var model = ml.Transforms.ExtractPixels("Pixels", "Image", interleavePixelColors: false, scaleImage: 1f / 255)
            .Append(ml.McDit().Transforms.MaskPatches("Patches", "Pixels", patchSize: 2))
            .Append(ml.McDit().Trainers.DiffusionTransformer(options))
            .Fit(data);
        Assert.Equal(3, model.LastTransformer.Channels);
        var colour = Pixels(model.Transform(data));
        Assert.All(colour, p => Assert.Equal(3 * Side * Side, p.Length));

        // MLImage column straight into the trainer, grey.
        var direct = Options(steps: 2);
        direct.Channels = 1;
        direct.NumberOfClasses = Classes;
        var generator = ml.McDit().Trainers.DiffusionTransformer(direct).Fit(data);
        Assert.Equal(1, generator.Channels);
        var path = TempPath("sample.png");
        try
        {
            using var image = generator.Transform(data).GetColumn<MLImage>("GeneratedImage").First();
            image.Save(path);
            Assert.True(new FileInfo(path).Length > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public sealed class ImageRow
    {
        [ImageType(Side, Side)] public MLImage Image { get; set; } = null!;
        public int Label { get; set; }
    }

    [Fact]
    public void SameSeedSameImage_DifferentSeedDifferentImage_GenerateMatchesTransform()
    {
        var ml = new MLContext(seed: 1);
        var generator = ml.McDit().Trainers.DiffusionTransformer(Options()).Fit(KeyData(ml));
        var classes = new[] { 0, 1, 2, 1, 0 };
        using var a = generator.Generate(5, classes, seed: 7);
        using var b = generator.Generate(5, classes, seed: 7);
        using var c = generator.Generate(5, classes, seed: 8);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.False(a.allclose(c));

        // Row i of Transform with base seed 7 is Generate's sample i with seed 7 (same batches of 4).
        var rows = generator.WithSampling(seed: 7).Transform(Classes_(ml, classes));
        var fromTransform = Pixels(rows);
        // Generate returns model-scale tensors in [-1, 1]; the pixel column holds the data's range, [0, 1] here.
        var fromGenerate = a.reshape(5, -1).data<float>().ToArray().Select(v => (v + 1f) * 0.5f).ToArray();
        for (int i = 0; i < 5; i++)
            Assert.Equal(fromGenerate.Skip(i * Side * Side).Take(Side * Side).ToArray(), fromTransform[i]);

        // A seed column drives the rows: equal seeds and classes give equal images.
        var seeded = ml.Data.LoadFromEnumerable(new[]
        {
            new SeededClassRow { Label = 1, Seed = 42 }, new SeededClassRow { Label = 2, Seed = 9 }, new SeededClassRow { Label = 1, Seed = 42 },
        });
        var bySeed = Pixels(generator.WithSampling(seedColumnName: "Seed").Transform(seeded));
        Assert.Equal(bySeed[0], bySeed[2]);
        Assert.NotEqual(bySeed[0], bySeed[1]);
    }

    [Fact]
    public void Transform_RunsOneSamplerCallPerBatch_AndImagesDoNotDependOnTheBatch()
    {
        var ml = new MLContext(seed: 1);
        var generator = ml.McDit().Trainers.DiffusionTransformer(Options()).Fit(KeyData(ml));
        var labels = Enumerable.Range(0, 10).Select(i => i % Classes).ToArray();
        var input = Classes_(ml, labels);

        var batched = generator.WithSampling(batchSize: 4);
        var inBatches = Pixels(batched.Transform(input));
        Assert.Equal(3, batched.SamplerRuns); // 4 + 4 + 2 rows

        var single = generator.WithSampling(batchSize: 1);
        var oneByOne = Pixels(single.Transform(input));
        Assert.Equal(10, single.SamplerRuns);
        for (int i = 0; i < labels.Length; i++)
            for (int j = 0; j < inBatches[i].Length; j++)
                Assert.Equal(oneByOne[i][j], inBatches[i][j], 1e-3f);

        // Reading only the input columns generates nothing.
        var other = generator.WithSampling(batchSize: 4);
        Assert.Equal(labels, other.Transform(input).GetColumn<int>("Label").ToArray());
        Assert.Equal(0, other.SamplerRuns);

        // A PredictionEngine generates one row per call.
        var engine = ml.Model.CreatePredictionEngine<ClassRow, Generated>(generator);
        var prediction = engine.Predict(new ClassRow { Label = 2 });
        Assert.Equal(Side * Side, prediction.GeneratedPixels.Length);
    }

    [Fact]
    public void Training_LogsProgress_AndStopsWhenCancelled()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        ml.McDit().Trainers.DiffusionTransformer(Options(steps: 3)).Fit(KeyData(ml));
        Assert.Contains(messages, m => m.Contains("McDit: step 3/3") && m.Contains("loss"));
        Assert.Contains(messages, m => m.Contains("McDit: 12 training rows"));

        var cancelled = new MLContext(seed: 1);
        int steps = 0;
        cancelled.Log += (_, e) =>
        {
            if (e.Message.Contains("McDit: step ") && Interlocked.Increment(ref steps) == 2) CancelExecution(cancelled);
        };
        var options = Options(steps: 200);
        Assert.Throws<OperationCanceledException>(() => cancelled.McDit().Trainers.DiffusionTransformer(options).Fit(KeyData(cancelled)));
        Assert.Equal(2, steps);

        using var source = new CancellationTokenSource();
        var byToken = new MLContext(seed: 1);
        int tokenSteps = 0;
        byToken.Log += (_, e) =>
        {
            if (e.Message.Contains("McDit: step ") && Interlocked.Increment(ref tokenSteps) == 1) source.Cancel();
        };
        var tokenOptions = Options(steps: 200);
        tokenOptions.CancellationToken = source.Token;
        Assert.ThrowsAny<OperationCanceledException>(() => byToken.McDit().Trainers.DiffusionTransformer(tokenOptions).Fit(KeyData(byToken)));
        Assert.Equal(1, tokenSteps);
    }

    [Fact]
    public void IntegerLabels_NeedTheClassCount_AndUnconditionalNeedsNoLabel()
    {
        var ml = new MLContext(seed: 1);
        var options = Options(steps: 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Trainers.DiffusionTransformer(options).Fit(IntData(ml)));
        Assert.Contains("'Label'", e.Message);
        Assert.Contains("NumberOfClasses", e.Message);

        options.NumberOfClasses = Classes;
        var conditional = ml.McDit().Trainers.DiffusionTransformer(options).Fit(IntData(ml));
        Assert.Equal(Classes, conditional.NumberOfClasses);
        Assert.Equal(4, Pixels(conditional.Transform(Classes_(ml, 0, 1, 2, 2))).Length);

        var unconditionalOptions = Options(steps: 2);
        unconditionalOptions.LabelColumnName = null;
        unconditionalOptions.Method = TrainingMethod.MaskDiT;
        var imagesOnly = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6)
            .Select(i => new ImageOnlyRow { Image = Pattern(i % Classes, new Random(i)) }).ToList());
        var unconditional = ml.McDit().Trainers.DiffusionTransformer(unconditionalOptions).Fit(imagesOnly);
        Assert.Equal(0, unconditional.NumberOfClasses);
        Assert.Null(unconditional.LabelColumnName);
        var generated = Pixels(unconditional.Transform(ml.Data.LoadFromEnumerable(new[] { new EmptyRow(), new EmptyRow() })));
        Assert.Equal(2, generated.Length);
        using var grid = unconditional.Generate(3);
        Assert.Equal(new long[] { 3, 1, Side, Side }, grid.shape);
    }

    [Fact]
    public void EpochLimit_UnmaskTuning_AndEveryMethodTrain()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var options = Options(steps: 100);
        options.MaximumNumberOfEpochs = 2; // 12 rows in batches of 4: 3 steps per epoch
        Assert.Equal(6, ml.McDit().Trainers.DiffusionTransformer(options).Fit(KeyData(ml)).TrainedSteps);
        Assert.Contains(messages, m => m.Contains("MaximumNumberOfEpochs"));

        var tuning = Options(steps: 2);
        tuning.UnmaskTuningSteps = 2;
        Assert.Equal(4, ml.McDit().Trainers.DiffusionTransformer(tuning).Fit(KeyData(ml)).TrainedSteps);
        Assert.Contains(messages, m => m.Contains("unmasking tuning"));

        foreach (var method in new[] { TrainingMethod.DiT, TrainingMethod.MaskDiT })
        {
            var o = Options(steps: 1);
            o.Method = method;
            if (method == TrainingMethod.DiT) o.ModelConfig = TinyNetwork with { DecoderDepth = 0 }; // plain DiT; MaskDiT adds its decoder
            var model = ml.McDit().Trainers.DiffusionTransformer(o).Fit(KeyData(ml));
            Assert.Equal(method, model.Method);
            Assert.Equal(method != TrainingMethod.DiT, model.Config.HasDecoder);
        }
    }

    [Fact]
    public void ImageGrid_HasOneRowPerClass()
    {
        var ml = new MLContext(seed: 1);
        var generator = ml.McDit().Trainers.DiffusionTransformer(Options(steps: 1)).Fit(KeyData(ml));
        var path = TempPath("grid.png");
        try
        {
            generator.SaveImageGrid(path, imagesPerClass: 2, seed: 3, scale: 2);
            Assert.True(new FileInfo(path).Length > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
