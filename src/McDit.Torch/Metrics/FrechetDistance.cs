using System.Runtime.InteropServices;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>
/// The Fréchet distance between two Gaussians, d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½): FID when the Gaussians
/// are fitted to Inception-v3 pool features, FD-ResNet18 for ResNet-18 features. Computed in float64 on the CPU.
/// </summary>
public static class FrechetDistance
{
    /// <summary>The diagonal offset added to both covariances when the plain computation is not finite (pytorch-fid's 1e-6).</summary>
    public const double DefaultEpsilon = 1e-6;

    /// <summary>The Fréchet distance between two fitted Gaussians.</summary>
    /// <param name="a">The first Gaussian (for example the generated set).</param>
    /// <param name="b">The second Gaussian (for example the reference set).</param>
    /// <param name="epsilon">Offset ε·I added to both covariances if the plain computation is not finite.</param>
    /// <exception cref="ArgumentException">The dimensions differ.</exception>
    public static double Compute(GaussianStatistics a, GaussianStatistics b, double epsilon = DefaultEpsilon)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Dimension != b.Dimension)
            throw new ArgumentException($"The statistics have dimensions {a.Dimension} and {b.Dimension}; expected equal dimensions.", nameof(b));
        return Compute(a.Mean, a.Covariance, b.Mean, b.Covariance, epsilon);
    }

    /// <summary>The Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2).</summary>
    /// <param name="mean1">μ1, shape [D].</param>
    /// <param name="covariance1">Σ1, shape [D, D], symmetric positive semi-definite.</param>
    /// <param name="mean2">μ2, shape [D].</param>
    /// <param name="covariance2">Σ2, shape [D, D], symmetric positive semi-definite.</param>
    /// <param name="epsilon">Offset ε·I added to both covariances if the plain computation is not finite.</param>
    /// <exception cref="ArgumentException">Shapes do not match.</exception>
    /// <exception cref="ArithmeticException">The result is not finite even with the offset (for example NaN inputs).</exception>
    public static double Compute(Tensor mean1, Tensor covariance1, Tensor mean2, Tensor covariance2,
        double epsilon = DefaultEpsilon)
    {
        TorchBackend.EnsureInitialized();
        ArgumentNullException.ThrowIfNull(mean1);
        ArgumentNullException.ThrowIfNull(covariance1);
        ArgumentNullException.ThrowIfNull(mean2);
        ArgumentNullException.ThrowIfNull(covariance2);
        if (mean1.ndim != 1)
            throw new ArgumentException($"mean1 has shape [{string.Join(", ", mean1.shape)}]; expected [D].", nameof(mean1));
        long d = mean1.shape[0];
        Check(mean2, new[] { d }, nameof(mean2));
        Check(covariance1, new[] { d, d }, nameof(covariance1));
        Check(covariance2, new[] { d, d }, nameof(covariance2));

        using var scope = NewDisposeScope();
        var m1 = mean1.to(float64, CPU);
        var m2 = mean2.to(float64, CPU);
        var s1 = Symmetrize(covariance1.to(float64, CPU));
        var s2 = Symmetrize(covariance2.to(float64, CPU));
        double meanTerm = (m1 - m2).square().sum().item<double>();

        double traceTerm = TraceTerm(s1, s2);
        if (!double.IsFinite(traceTerm))
        {
            // pytorch-fid's fallback: a small diagonal offset on both covariances.
            var offset = eye(d, dtype: float64) * epsilon;
            traceTerm = TraceTerm(s1 + offset, s2 + offset);
        }
        double result = meanTerm + traceTerm;
        if (!double.IsFinite(result))
            throw new ArithmeticException(
                "The Fréchet distance is not finite even with a diagonal offset of " + epsilon +
                "; check the statistics for NaN or infinite values.");
        return result;
    }

    /// <summary>
    /// Tr(Σ1) + Tr(Σ2) − 2·Tr((Σ1Σ2)^½), or NaN when an eigendecomposition fails.
    /// </summary>
    /// <remarks>
    /// Σ1Σ2 is not symmetric, and a general matrix square root of it (scipy's sqrtm, as pytorch-fid uses) loses
    /// accuracy or returns complex/infinite values when the product is singular or ill-conditioned. But
    /// Σ1Σ2 = A⁻¹·(A Σ2 A)·A with A = Σ1^½ when Σ1 is invertible, and by continuity its eigenvalues always equal
    /// those of the symmetric positive semi-definite M = A Σ2 A; so Tr((Σ1Σ2)^½) = Σᵢ √λᵢ(M). Both steps are
    /// symmetric eigendecompositions (torch.linalg.eigh, float64), which are backward stable and defined for
    /// singular matrices too. Eigenvalues that rounding makes slightly negative are clamped to 0 before the square
    /// root, so the result is finite for any finite symmetric PSD input; so are eigenvalues below the numerical-rank
    /// tolerance, whose square roots would otherwise turn rounding noise in a large null space (fewer samples than
    /// dimensions) into an error of order D·√(ε·λmax).
    /// </remarks>
    static double TraceTerm(Tensor s1, Tensor s2)
    {
        using var scope = NewDisposeScope();
        try
        {
            var (l1, v1) = linalg.eigh(s1);
            var sqrtS1 = (v1 * NumericallyNonNegative(l1).sqrt().unsqueeze(0)).matmul(v1.t());
            var m = Symmetrize(sqrtS1.matmul(s2).matmul(sqrtS1));
            var traceSqrt = NumericallyNonNegative(linalg.eigvalsh(m)).sqrt().sum().item<double>();
            return s1.trace().item<double>() + s2.trace().item<double>() - 2 * traceSqrt;
        }
        catch (ExternalException)
        {
            return double.NaN; // eigh did not converge (for example NaN entries)
        }
    }

    static Tensor Symmetrize(Tensor m) => (m + m.t()) * 0.5;

    /// <summary>
    /// Eigenvalues with those below the numerical-rank tolerance (D · 2⁻⁵² · λmax, as numpy's matrix_rank) set to 0.
    /// Rounding leaves the null space of a singular matrix with eigenvalues of that size and either sign, and their
    /// square roots (√(1e-16·λmax) each) would otherwise add up over hundreds of null directions.
    /// </summary>
    static Tensor NumericallyNonNegative(Tensor eigenvalues)
    {
        double max = eigenvalues.abs().max().item<double>();
        double tolerance = eigenvalues.shape[0] * Math.Pow(2, -52) * max;
        return eigenvalues.where(eigenvalues.gt(tolerance), 0.0);
    }

    static void Check(Tensor t, long[] shape, string name)
    {
        if (!t.shape.SequenceEqual(shape))
            throw new ArgumentException(
                $"{name} has shape [{string.Join(", ", t.shape)}]; expected [{string.Join(", ", shape)}].", name);
    }
}
