using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>Improved precision and recall (both in [0, 1]).</summary>
/// <param name="Precision">Fraction of generated samples inside the real manifold (fidelity).</param>
/// <param name="Recall">Fraction of real samples inside the generated manifold (coverage).</param>
public readonly record struct PrecisionRecallResult(double Precision, double Recall);

/// <summary>
/// Improved precision and recall of Kynkäänniemi et al. (2019), as ADM's evaluator computes them: each set's
/// manifold is the union of balls around its feature vectors, each ball's radius being the distance to that
/// vector's k-th nearest neighbour in the same set (itself not counted); precision is the fraction of generated
/// vectors inside the real manifold, recall the fraction of real vectors inside the generated manifold.
/// Distances are Euclidean, in float64, computed in row blocks so memory stays O(block · N).
/// </summary>
public static class PrecisionRecall
{
    /// <summary>The neighbourhood size used by ADM and the paper (k = 3).</summary>
    public const int DefaultK = 3;

    /// <summary>Precision and recall of <paramref name="generated"/> against <paramref name="real"/>.</summary>
    /// <param name="real">Real feature vectors [N, D], N &gt; k.</param>
    /// <param name="generated">Generated feature vectors [M, D], M &gt; k.</param>
    /// <param name="k">Neighbourhood size.</param>
    /// <param name="blockSize">Rows per distance block.</param>
    public static PrecisionRecallResult Compute(Tensor real, Tensor generated, int k = DefaultK, int blockSize = 4096)
    {
        TorchBackend.EnsureInitialized();
        ArgumentNullException.ThrowIfNull(real);
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        if (real.ndim != 2 || generated.ndim != 2 || real.shape[1] != generated.shape[1])
            throw new ArgumentException(
                $"Expected real [N, D] and generated [M, D]; got [{string.Join(", ", real.shape)}] and [{string.Join(", ", generated.shape)}].");
        if (real.shape[0] <= k || generated.shape[0] <= k)
            throw new ArgumentException($"Both sets need more than k = {k} vectors; got {real.shape[0]} real and {generated.shape[0]} generated.");

        using var scope = NewDisposeScope();
        var r = real.detach().to(float64, CPU);
        var g = generated.detach().to(float64, CPU);
        var realRadii = Radii(r, k, blockSize);
        var genRadii = Radii(g, k, blockSize);
        double precision = FractionInside(g, r, realRadii, blockSize);
        double recall = FractionInside(r, g, genRadii, blockSize);
        return new PrecisionRecallResult(precision, recall);
    }

    /// <summary>Distance from each row of <paramref name="x"/> to its k-th nearest other row.</summary>
    internal static Tensor Radii(Tensor x, int k, int blockSize)
    {
        long n = x.shape[0];
        var parts = new List<Tensor>();
        for (long s = 0; s < n; s += blockSize)
        {
            var block = x.narrow(0, s, Math.Min(blockSize, n - s));
            var d = cdist(block, x);
            // The k+1 smallest include the row itself (distance 0); the largest of them is the k-th neighbour.
            parts.Add(d.topk(k + 1, dim: 1, largest: false, sorted: true).values.select(1, k));
        }
        return cat(parts, 0);
    }

    /// <summary>Fraction of rows of <paramref name="query"/> within radii[i] of some manifold row i.</summary>
    internal static double FractionInside(Tensor query, Tensor manifold, Tensor radii, int blockSize)
    {
        long n = query.shape[0];
        long inside = 0;
        // A relative tolerance so that a point exactly on a ball's boundary counts despite rounding.
        var limit = radii * (1 + 1e-12) + 1e-12;
        for (long s = 0; s < n; s += blockSize)
        {
            using var inner = NewDisposeScope();
            var d = cdist(query.narrow(0, s, Math.Min(blockSize, n - s)), manifold);
            inside += d.le(limit.unsqueeze(0)).any(1).sum().item<long>();
        }
        return (double)inside / n;
    }
}
