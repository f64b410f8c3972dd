using System.Diagnostics;
using McDit.MLNet.Evaluation;
using McDit.Torch.Data;
using McDit.Torch.Metrics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace McDit.MLNet.Tests.Evaluation;

public class ResNet18EvaluationTests(ITestOutputHelper output)
{
    const int N = 10;

    /// <summary>One context for all tests: the ONNX sessions are created once per context (seconds).</summary>
    static readonly MLContext Ml = new(seed: 1);

    /// <summary>N held-out Fashion-MNIST images [N, 1, 28, 28] in [-1, 1], two of each of 5 classes.</summary>
    static Tensor Images(int offset = 0)
    {
        var set = FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut);
        var indices = Enumerable.Range(0, N).Select(i => (i % 5) * 200 + offset + i / 5).ToArray();
        return set.ToTensor(indices);
    }

    public sealed class VectorRow
    {
        [VectorType(1, 28, 28)] public float[] Image { get; set; } = Array.Empty<float>();
    }

    public sealed class ImageRow
    {
        [ImageType(28, 28)] public MLImage? Image { get; set; }
    }

    [Fact]
    public void GreyAndColourImagesGive512Features()
    {
        var ml = Ml;
        var load = Stopwatch.StartNew();
        var extractor = ml.McDit().ResNet18Featurizer();
        output.WriteLine($"ResNet-18 featurizer ready in {load.ElapsedMilliseconds} ms (first use in this process loads the ONNX models)");
        Assert.Equal(512, extractor.Dimension);
        Assert.Equal(ResNet18FeatureExtractor.ExtractorId, extractor.Id);
        using var scope = NewDisposeScope();
        var grey = Images();
        extractor.Extract(grey.narrow(0, 0, 2)).Dispose(); // warm-up
        var watch = Stopwatch.StartNew();
        var features = extractor.Extract(grey);
        watch.Stop();
        output.WriteLine($"ResNet-18 through ML.NET: {N / watch.Elapsed.TotalSeconds:F1} images/s ({N} images, {watch.ElapsedMilliseconds} ms)");
        Assert.Equal(new long[] { N, 512 }, features.shape);
        Assert.Equal(float64, features.dtype);
        Assert.True(features.isfinite().all().item<bool>());
        Assert.True(features.std().item<double>() > 0);
        // Grey is three equal channels.
        var colour = extractor.Extract(grey.narrow(0, 0, 3).expand(-1, 3, -1, -1));
        Assert.True((colour - features.narrow(0, 0, 3)).abs().max().item<double>() < 1e-6);
    }

    [Fact]
    public void FrechetDistanceOfASetToItselfIsZeroAndToANoisedSetPositive()
    {
        var ml = Ml;
        using var scope = NewDisposeScope();
        var images = Images();
        using var reference = ml.McDit().ComputeFeatureStatistics(images);
        var self = ml.McDit().Evaluate(images, reference);
        Assert.Equal(N, self.GeneratedCount);
        Assert.Equal(ResNet18FeatureExtractor.ExtractorId, self.ExtractorId);
        Assert.True(Math.Abs(self.FrechetDistance) < 1e-6, self.ToString()); // features in float32, statistics in float64
        var noised = (images + randn(images.shape, generator: new Generator(3)) * 0.5f).clamp(-1, 1);
        var other = ml.McDit().Evaluate(noised, reference);
        output.WriteLine(other.ToString());
        Assert.True(other.FrechetDistance > 1.0, other.ToString());
    }

    [Fact]
    public void VectorAndImageColumnsGiveTheSameStatisticsAsTensors()
    {
        var ml = Ml;
        using var scope = NewDisposeScope();
        var images = Images().narrow(0, 0, 6);
        var options = new FrechetEvaluationOptions { BatchSize = 4 };
        var progress = new List<long>();
        options.Progress = new SyncProgress(p => progress.Add(p.Done));
        using var fromTensor = ml.McDit().ComputeFeatureStatistics(images, options);

        // Pixel columns hold [0, 1], as ExtractPixels (scale 1/255) and McDit's loaders give them.
        var rows = Enumerable.Range(0, 6).Select(i => new VectorRow { Image = ((images[i].flatten() + 1) / 2).data<float>().ToArray() }).ToList();
        progress.Clear();
        using var fromVectors = ml.McDit().ComputeFeatureStatistics(ml.Data.LoadFromEnumerable(rows), "Image", options);
        Assert.Equal(new long[] { 4, 6 }, progress);
        Assert.True((fromVectors.Covariance - fromTensor.Covariance).abs().max().item<double>() < 1e-9);

        var mlImages = ImageTensors.ToMLImages(images);
        try
        {
            var view = ml.Data.LoadFromEnumerable(mlImages.Select(m => new ImageRow { Image = m }).ToList());
            Assert.IsType<ImageDataViewType>(view.Schema["Image"].Type);
            progress.Clear();
            using var fromImages = ml.McDit().ComputeFeatureStatistics(view, "Image", options);
            Assert.Equal(new long[] { 4, 6 }, progress);
            Assert.True((fromImages.Mean - fromTensor.Mean).abs().max().item<double>() < 1e-5);
        }
        finally
        {
            foreach (var m in mlImages) m.Dispose();
        }
    }

    [Fact]
    public void ReferenceStatisticsAreCachedAndACacheOfAnotherExtractorIsRefused()
    {
        var ml = Ml;
        using var scope = NewDisposeScope();
        var reference = Images().narrow(0, 0, 8);
        var generated = Images(offset: 50).narrow(0, 0, 8);
        var path = Path.Combine(Path.GetTempPath(), $"mcdit-fd-ref-{Guid.NewGuid():N}.safetensors");
        try
        {
            var options = new FrechetEvaluationOptions { ReferenceCachePath = path };
            var first = ml.McDit().Evaluate(generated, reference, options);
            Assert.True(File.Exists(path));
            using (var cached = GaussianStatistics.Load(path))
            {
                Assert.Equal(8, cached.Count);
                Assert.Equal(ResNet18FeatureExtractor.ExtractorId, cached.ExtractorId);
                Assert.Equal(512, cached.Dimension);
            }
            // The second call must not featurize the reference set: give it one that would change the answer.
            var second = ml.McDit().Evaluate(generated, -reference, options);
            Assert.Equal(first.FrechetDistance, second.FrechetDistance, 9);
            Assert.Equal(8, second.ReferenceCount);

            using (var foreign = GaussianStatistics.FromFeatures(randn(10, 512, dtype: float64), "inception-v3-fid/pool_3"))
                foreign.Save(path);
            var e = Assert.Throws<InvalidDataException>(() => ml.McDit().Evaluate(generated, reference, options));
            Assert.Contains("inception-v3-fid/pool_3", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AMissingModelFolderSaysWhereTheModelsComeFrom()
    {
        var ml = Ml;
        var e = Assert.Throws<FileNotFoundException>(() => Ml.McDit().ResNet18Featurizer(Path.Combine(Path.GetTempPath(), "no-models-here")));
        Assert.Contains("Microsoft.ML.DnnImageFeaturizer.ResNet18", e.Message);
    }

    sealed class SyncProgress(Action<FeaturizationProgress> report) : IProgress<FeaturizationProgress>
    {
        public void Report(FeaturizationProgress value) => report(value);
    }
}
