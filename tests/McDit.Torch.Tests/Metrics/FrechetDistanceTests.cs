using McDit.Torch.Metrics;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Metrics;

public class FrechetDistanceTests
{
    static Tensor T(params double[] v) => tensor(v, dtype: float64);
    static Tensor M(int d, params double[] v) => tensor(v, dtype: float64).reshape(d, d);

    static Tensor RandomCovariance(int d, long seed)
    {
        var g = new Generator((ulong)seed);
        var a = randn(d, d, dtype: float64, generator: g);
        return a.matmul(a.t()) + eye(d, dtype: float64) * 0.1;
    }

    [Fact]
    public void IdenticalGaussiansAreAtDistanceZero()
    {
        using var scope = NewDisposeScope();
        var mu = randn(16, dtype: float64, generator: new Generator(3));
        var sigma = RandomCovariance(16, 4);
        Assert.Equal(0.0, FrechetDistance.Compute(mu, sigma, mu, sigma), 9);
    }

    [Fact]
    public void IdenticalFeatureSetsAreAtDistanceZero()
    {
        using var scope = NewDisposeScope();
        var x = randn(200, 8, dtype: float64, generator: new Generator(5));
        using var a = GaussianStatistics.FromFeatures(x);
        using var b = GaussianStatistics.FromFeatures(x.clone());
        Assert.Equal(0.0, FrechetDistance.Compute(a, b), 9);
    }

    [Fact]
    public void AMeanShiftAddsItsSquaredNorm()
    {
        using var scope = NewDisposeScope();
        var sigma = RandomCovariance(10, 7);
        var mu1 = randn(10, dtype: float64, generator: new Generator(8));
        var shift = randn(10, dtype: float64, generator: new Generator(9));
        double expected = shift.square().sum().item<double>();
        Assert.Equal(expected, FrechetDistance.Compute(mu1, sigma, mu1 + shift, sigma), 9);
    }

    [Fact]
    public void DiagonalGaussiansGiveTheSumOfSquaredSqrtDifferences()
    {
        using var scope = NewDisposeScope();
        double[] a = { 1, 4, 0.25, 9, 2 }, b = { 4, 1, 1, 0.5, 2 };
        double expected = a.Zip(b, (x, y) => Math.Pow(Math.Sqrt(x) - Math.Sqrt(y), 2)).Sum();
        var mu = zeros(5, dtype: float64);
        Assert.Equal(expected, FrechetDistance.Compute(mu, diag(T(a)), mu, diag(T(b))), 10);
    }

    [Fact]
    public void TwoDimensionalCaseWorkedByHand()
    {
        using var scope = NewDisposeScope();
        // Σ1 = [[2,1],[1,2]] has eigenvalues 3, 1 on (1,1)/√2, (1,−1)/√2; Σ2 = I.
        // Tr((Σ1Σ2)^½) = √3 + 1, ‖Δμ‖² = 1 + 4, so d² = 5 + 4 + 2 − 2(√3 + 1) = 9 − 2√3.
        var s1 = M(2, 2, 1, 1, 2);
        Assert.Equal(9 - 2 * Math.Sqrt(3), FrechetDistance.Compute(T(1, 0), s1, T(0, 2), eye(2, dtype: float64)), 12);
        // Σ2 = [[2,−1],[−1,2]] shares the eigenvectors with eigenvalues 1, 3: Σ1Σ2 has eigenvalues 3, 3,
        // Tr((Σ1Σ2)^½) = 2√3 and d² = 4 + 4 − 4√3 for equal means.
        var s2 = M(2, 2, -1, -1, 2);
        Assert.Equal(8 - 4 * Math.Sqrt(3), FrechetDistance.Compute(T(0, 0), s1, T(0, 0), s2), 12);
    }

    [Fact]
    public void SingularCovariancesStayFiniteAndCorrect()
    {
        using var scope = NewDisposeScope();
        var mu = zeros(3, dtype: float64);
        // Orthogonal rank-1 covariances: Σ1Σ2 = 0, so d² = Tr Σ1 + Tr Σ2 = 2.
        Assert.Equal(2.0, FrechetDistance.Compute(mu, diag(T(1, 0, 0)), mu, diag(T(0, 1, 0))), 9);
        // Σ1 = vvᵀ, Σ2 = wwᵀ: Σ1Σ2 = (v·w) v wᵀ has the single eigenvalue (v·w)², so
        // d² = |v|² + |w|² − 2|v·w| = 5 + 5 − 4 = 6 (both matrices singular, the product too).
        var v = T(1, 2, 0);
        var w = T(2, 0, 1);
        Assert.Equal(6.0, FrechetDistance.Compute(mu, v.outer(v), mu, w.outer(w)), 6);
        // Fewer samples than dimensions: rank-deficient covariances, identical sets still at ~0.
        var x = randn(5, 64, dtype: float64, generator: new Generator(11));
        using var s = GaussianStatistics.FromFeatures(x);
        double d = FrechetDistance.Compute(s, s);
        Assert.True(double.IsFinite(d) && Math.Abs(d) < 1e-9, $"d = {d}");
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() =>
            FrechetDistance.Compute(zeros(2, dtype: float64), eye(2, dtype: float64), zeros(3, dtype: float64), eye(3, dtype: float64)));
    }
}
