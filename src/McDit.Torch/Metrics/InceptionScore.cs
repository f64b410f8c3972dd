using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>
/// Inception Score, IS = exp(E_x KL(p(y|x) ‖ p(y))), from classifier logits, in float64. As in ADM's evaluator the
/// set is cut into consecutive chunks of <c>splitSize</c> rows, IS is computed per chunk (with that chunk's
/// marginal p(y)) and the chunk scores are averaged.
/// </summary>
public static class InceptionScore
{
    /// <summary>ADM's chunk size (5000 rows).</summary>
    public const int DefaultSplitSize = 5000;

    /// <summary>IS from logits [N, K] (softmax taken here).</summary>
    /// <param name="logits">Classifier logits, one row per image.</param>
    /// <param name="splitSize">Rows per chunk; the last chunk may be smaller.</param>
    public static double FromLogits(Tensor logits, int splitSize = DefaultSplitSize)
    {
        Check(logits, splitSize);
        using var scope = NewDisposeScope();
        var logp = logits.detach().to(float64, CPU).log_softmax(1);
        return Chunked(logp, splitSize);
    }

    /// <summary>IS from class probabilities [N, K] (rows sum to 1).</summary>
    /// <param name="probabilities">p(y|x), one row per image.</param>
    /// <param name="splitSize">Rows per chunk; the last chunk may be smaller.</param>
    public static double FromProbabilities(Tensor probabilities, int splitSize = DefaultSplitSize)
    {
        Check(probabilities, splitSize);
        using var scope = NewDisposeScope();
        var p = probabilities.detach().to(float64, CPU);
        // log 0 = −inf only where p = 0, and those terms are 0·(−inf): zeroed below via p·logp with logp clamped.
        var logp = p.clamp_min(double.Epsilon).log();
        return Chunked(logp, splitSize);
    }

    static double Chunked(Tensor logp, int splitSize)
    {
        long n = logp.shape[0];
        double total = 0;
        int chunks = 0;
        for (long start = 0; start < n; start += splitSize)
        {
            using var scope = NewDisposeScope();
            var part = logp.narrow(0, start, Math.Min(splitSize, n - start));
            var p = part.exp();
            var logMarginal = p.mean(new long[] { 0 }, keepdim: true).clamp_min(double.Epsilon).log();
            var kl = (p * (part - logMarginal)).sum(1).mean().item<double>();
            total += Math.Exp(kl);
            chunks++;
        }
        return total / chunks;
    }

    static void Check(Tensor t, int splitSize)
    {
        TorchBackend.EnsureInitialized();
        ArgumentNullException.ThrowIfNull(t);
        if (t.ndim != 2 || t.shape[0] < 1 || t.shape[1] < 1)
            throw new ArgumentException($"Expected [N, K] with N, K ≥ 1; got [{string.Join(", ", t.shape)}].", nameof(t));
        ArgumentOutOfRangeException.ThrowIfLessThan(splitSize, 1);
    }
}
