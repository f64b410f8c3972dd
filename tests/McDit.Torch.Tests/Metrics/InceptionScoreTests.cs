using McDit.Torch.Metrics;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class InceptionScoreTests
{
    [Fact]
    public void UniformPredictionsScoreOne()
    {
        using var logits = zeros(50, 1008);
        Assert.Equal(1.0, InceptionScore.FromLogits(logits), 12);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(10)]
    public void ConfidentPredictionsSpreadEquallyOverKClassesScoreK(int k)
    {
        using var scope = NewDisposeScope();
        var labels = arange(10 * k, dtype: int64) % k;
        var probabilities = nn.functional.one_hot(labels, 1000).to(float64);
        Assert.Equal(k, InceptionScore.FromProbabilities(probabilities), 9);
        Assert.Equal(k, InceptionScore.FromLogits(probabilities * 60.0), 9);
    }

    [Fact]
    public void ChunksAreScoredSeparatelyAndAveraged()
    {
        using var scope = NewDisposeScope();
        // First chunk: 4 classes equally (IS 4); second chunk: one class only (IS 1). Mean 2.5.
        var labels = cat(new[] { arange(8, dtype: int64) % 4, zeros(8, dtype: int64) });
        var probabilities = nn.functional.one_hot(labels, 10).to(float64);
        Assert.Equal(2.5, InceptionScore.FromProbabilities(probabilities, splitSize: 8), 9);
    }
}
