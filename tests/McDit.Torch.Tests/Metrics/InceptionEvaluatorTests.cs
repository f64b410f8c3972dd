using McDit.Torch.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class InceptionEvaluatorTests
{
    static InceptionSetFeatures Constructed(Tensor pool, Tensor spatial, Tensor logits) => new(
        GaussianStatistics.FromFeatures(pool, "inception-v3-fid/pool_3"),
        GaussianStatistics.FromFeatures(spatial, "inception-v3-fid/mixed_6-conv-7"),
        pool.to(float32), logits.to(float32));

    [Fact]
    public void ConstructedFeatureSetsGiveTheirKnownMetrics()
    {
        using var scope = NewDisposeScope();
        var pool = randn(40, 6, dtype: float64, generator: new Generator(1));
        var spatial = randn(40, 5, dtype: float64, generator: new Generator(2));
        var logits = nn.functional.one_hot(arange(40, dtype: int64) % 4, 1008).to(float32) * 60f; // IS = 4
        using var reference = Constructed(pool, spatial, logits);
        using var same = Constructed(pool.clone(), spatial.clone(), logits.clone());
        var m = InceptionEvaluator.Compute(same, reference);
        Assert.Equal(0.0, m.Fid, 6); // pool features stored in float32 for P/R; statistics from float64
        Assert.Equal(0.0, m.SFid, 6);
        Assert.Equal(4.0, m.InceptionScore, 6);
        Assert.Equal(1.0, m.Precision);
        Assert.Equal(1.0, m.Recall);
        Assert.Equal(40, m.GeneratedCount);

        var shift = zeros(6, dtype: float64);
        shift[0] = 2.0;
        using var shifted = Constructed(pool + shift, spatial.clone(), logits.clone());
        var s = InceptionEvaluator.Compute(shifted, reference);
        Assert.Equal(4.0, s.Fid, 6); // ‖Δμ‖² = 4
        Assert.True(s.Precision < 1.0 && s.Recall < 1.0);
    }
}
