using McDit.Torch.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class PrecisionRecallTests
{
    [Fact]
    public void IdenticalSetsHavePrecisionAndRecallOne()
    {
        using var x = randn(40, 16, generator: new Generator(1));
        var pr = PrecisionRecall.Compute(x, x, blockSize: 7);
        Assert.Equal(1.0, pr.Precision);
        Assert.Equal(1.0, pr.Recall);
    }

    [Fact]
    public void DisjointFarApartSetsHavePrecisionAndRecallZero()
    {
        using var scope = NewDisposeScope();
        var real = randn(30, 8, generator: new Generator(2));
        var fake = randn(25, 8, generator: new Generator(3)) + 1000f;
        var pr = PrecisionRecall.Compute(real, fake);
        Assert.Equal(0.0, pr.Precision);
        Assert.Equal(0.0, pr.Recall);
    }

    [Fact]
    public void OneDimensionalCaseWorkedByHand()
    {
        using var scope = NewDisposeScope();
        // Real 0..5: 3rd-neighbour radii 3,2,2,2,2,3 → manifold [−3, 8].
        // Generated 7,8,9,10,20: radii 3,2,2,3,12 → manifold [4, 32].
        // Precision: 7 and 8 (on the boundary) of 5 → 0.4. Recall: 4 (on the boundary) and 5 of 6 → 1/3.
        var real = tensor(new double[] { 0, 1, 2, 3, 4, 5 }).unsqueeze(1);
        var fake = tensor(new double[] { 7, 8, 9, 10, 20 }).unsqueeze(1);
        var pr = PrecisionRecall.Compute(real, fake, k: 3, blockSize: 2);
        Assert.Equal(0.4, pr.Precision, 12);
        Assert.Equal(1.0 / 3, pr.Recall, 12);
    }

    [Fact]
    public void SetsNoLargerThanKAreRejected()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => PrecisionRecall.Compute(zeros(3, 2), zeros(10, 2)));
    }
}
