using McDit.Torch.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class FidEvaluatorTests
{
    /// <summary>Features = mean of each channel plus the pixel std: cheap and deterministic.</summary>
    sealed class ToyExtractor(string id = "toy/v1") : IFeatureExtractor
    {
        public int Calls { get; private set; }
        public string Id => id;
        public int Dimension => 4;
        public Tensor Extract(Tensor images)
        {
            Calls++;
            using var scope = NewDisposeScope();
            var x = images.to(float64).expand(-1, 3, -1, -1);
            var mean = x.mean(new long[] { 2, 3 });
            var std = x.flatten(1).std(1).unsqueeze(1);
            return cat(new[] { mean, std }, 1).MoveToOuterDisposeScope();
        }
        public void Dispose() { }
    }

    [Fact]
    public void ReferenceStatisticsAreCachedAndAnotherExtractorsCacheIsRefused()
    {
        using var scope = NewDisposeScope();
        var images = rand(30, 1, 8, 8, generator: new Generator(1)) * 2 - 1;
        var path = Path.Combine(Path.GetTempPath(), $"mcdit-ref-{Guid.NewGuid():N}.safetensors");
        try
        {
            var extractor = new ToyExtractor();
            var progress = new List<long>();
            using var first = FidEvaluator.GetOrComputeReference(extractor, path, () => FidEvaluator.Batches(images, 8),
                new SyncProgress(p => progress.Add(p.Done)));
            Assert.Equal(new long[] { 8, 16, 24, 30 }, progress);
            int calls = extractor.Calls;
            using var second = FidEvaluator.GetOrComputeReference(extractor, path, () => throw new InvalidOperationException("recomputed"));
            Assert.Equal(calls, extractor.Calls);
            Assert.Equal(30, second.Count);
            Assert.True(TestTensors.Same(first.Covariance, second.Covariance));
            Assert.Equal(0.0, FidEvaluator.Compute(extractor, images, second, batchSize: 7), 9);
            Assert.True(FidEvaluator.Compute(extractor, images * 0.5f, second) > 0.01);
            Assert.Throws<InvalidDataException>(() =>
                FidEvaluator.GetOrComputeReference(new ToyExtractor("toy/v2"), path, () => FidEvaluator.Batches(images, 8)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    sealed class SyncProgress(Action<FeaturizationProgress> report) : IProgress<FeaturizationProgress>
    {
        public void Report(FeaturizationProgress value) => report(value);
    }
}
