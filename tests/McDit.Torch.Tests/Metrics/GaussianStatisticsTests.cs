using McDit.Torch.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class GaussianStatisticsTests
{
    [Fact]
    public void StreamingAccumulationEqualsTheDirectComputation()
    {
        using var scope = NewDisposeScope();
        // A large common offset: the naive Σxxᵀ − Nμμᵀ formula would lose digits here in float32.
        var x = randn(97, 6, dtype: float64, generator: new Generator(1)) * 0.01 + 1000.0;
        using var acc = new GaussianStatisticsAccumulator(6);
        foreach (var size in new[] { 1, 10, 33, 50, 3 })
        {
            long start = acc.Count;
            acc.Add(x.narrow(0, start, size).to(float32).to(float64)); // exercise dtype conversion too
        }
        Assert.Equal(97, acc.Count);
        using var stats = acc.ToStatistics();
        var xc = x.to(float32).to(float64);
        var mean = xc.mean(new long[] { 0 });
        var centred = xc - mean;
        var cov = centred.t().matmul(centred) / 96.0;
        Assert.True((stats.Mean - mean).abs().max().item<double>() < 1e-9);
        Assert.True((stats.Covariance - cov).abs().max().item<double>() < 1e-12);
        Assert.Equal(float64, stats.Covariance.dtype);
        // torch.cov agrees (unbiased).
        Assert.True((stats.Covariance - xc.t().cov()).abs().max().item<double>() < 1e-12);
    }

    [Fact]
    public void FewerThanTwoVectorsHaveNoCovariance()
    {
        using var acc = new GaussianStatisticsAccumulator(3);
        using var one = ones(1, 3);
        acc.Add(one);
        Assert.Throws<InvalidOperationException>(() => acc.ToStatistics());
        using var wrong = ones(2, 4);
        Assert.Throws<ArgumentException>(() => acc.Add(wrong));
    }

    [Fact]
    public void SaveLoadRoundTripsAndRefusesAnotherExtractor()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(Path.GetTempPath(), $"mcdit-stats-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var stats = GaussianStatistics.FromFeatures(randn(20, 4, generator: new Generator(2)), "test-extractor/v1");
            stats.Save(path);
            using var back = GaussianStatistics.Load(path, "test-extractor/v1");
            Assert.Equal(20, back.Count);
            Assert.Equal("test-extractor/v1", back.ExtractorId);
            Assert.True(TestTensors.Same(stats.Mean, back.Mean));
            Assert.True(TestTensors.Same(stats.Covariance, back.Covariance));
            var e = Assert.Throws<InvalidDataException>(() => GaussianStatistics.Load(path, "other-extractor"));
            Assert.Contains("test-extractor/v1", e.Message);
            Assert.Contains("other-extractor", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
