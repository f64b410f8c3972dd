using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>ADM's evaluation suite for one generated set against one reference set.</summary>
/// <param name="Fid">Fréchet distance of pool_3 features.</param>
/// <param name="SFid">Fréchet distance of mixed_6/conv spatial features.</param>
/// <param name="InceptionScore">Inception Score of the generated set.</param>
/// <param name="Precision">k = 3 improved precision.</param>
/// <param name="Recall">k = 3 improved recall.</param>
/// <param name="GeneratedCount">Generated images evaluated.</param>
/// <param name="ReferenceCount">Reference images evaluated.</param>
public sealed record InceptionMetrics(double Fid, double SFid, double InceptionScore, double Precision, double Recall,
    long GeneratedCount, long ReferenceCount);

/// <summary>The features of one image set that the Inception metrics need. Owns its tensors.</summary>
public sealed class InceptionSetFeatures : IDisposable
{
    internal InceptionSetFeatures(GaussianStatistics pool, GaussianStatistics spatial, Tensor poolFeatures, Tensor logits)
    {
        Pool = pool;
        Spatial = spatial;
        PoolFeatures = poolFeatures;
        Logits = logits;
    }

    /// <summary>Statistics of pool_3 features (FID).</summary>
    public GaussianStatistics Pool { get; }

    /// <summary>Statistics of spatial features (sFID).</summary>
    public GaussianStatistics Spatial { get; }

    /// <summary>pool_3 features of the first images (at most the sample limit), float32 [n, 2048], for precision/recall.</summary>
    public Tensor PoolFeatures { get; }

    /// <summary>Logits of the first images (at most the sample limit), float32 [n, K], for the Inception Score.</summary>
    public Tensor Logits { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Pool.Dispose();
        Spatial.Dispose();
        PoolFeatures.Dispose();
        Logits.Dispose();
    }
}

/// <summary>FID, sFID, Inception Score and k = 3 precision/recall with the FID Inception-v3, as ADM's evaluator reports them.</summary>
public static class InceptionEvaluator
{
    /// <summary>Featurizes a set: running statistics for all images, raw pool features and logits for the first
    /// <paramref name="sampleLimit"/> images (ADM uses 10k reference images for precision/recall).</summary>
    /// <param name="network">The FID Inception-v3.</param>
    /// <param name="batches">Image batches [n, C, H, W] in [-1, 1].</param>
    /// <param name="sampleLimit">How many rows of pool features and logits to keep.</param>
    /// <param name="progress">Receives the running count after each batch, or null.</param>
    public static InceptionSetFeatures Featurize(InceptionV3 network, IEnumerable<Tensor> batches, int sampleLimit = 50_000,
        IProgress<FeaturizationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(batches);
        using var pool = new GaussianStatisticsAccumulator(InceptionV3.PoolDimension, "inception-v3-fid/pool_3");
        using var spatial = new GaussianStatisticsAccumulator(InceptionV3.SpatialDimension, "inception-v3-fid/mixed_6-conv-7");
        var kept = new List<Tensor>();
        var logits = new List<Tensor>();
        long keptRows = 0;
        try
        {
            foreach (var batch in batches)
            {
                using var output = network.Features(batch);
                pool.Add(output.Pool);
                spatial.Add(output.Spatial);
                long take = Math.Min(output.Pool.shape[0], sampleLimit - keptRows);
                if (take > 0)
                {
                    kept.Add(output.Pool.narrow(0, 0, take).to(float32, CPU).clone());
                    logits.Add(output.Logits.narrow(0, 0, take).to(float32, CPU).clone());
                    keptRows += take;
                }
                progress?.Report(new FeaturizationProgress(pool.Count, null));
            }
            return new InceptionSetFeatures(pool.ToStatistics(), spatial.ToStatistics(), cat(kept, 0), cat(logits, 0));
        }
        finally
        {
            foreach (var t in kept) t.Dispose();
            foreach (var t in logits) t.Dispose();
        }
    }

    /// <summary>The metrics of a generated set against a reference set, both featurized with <see cref="Featurize"/>.</summary>
    /// <param name="generated">The generated set's features.</param>
    /// <param name="reference">The reference set's features.</param>
    /// <param name="k">Neighbourhood size of precision/recall.</param>
    public static InceptionMetrics Compute(InceptionSetFeatures generated, InceptionSetFeatures reference, int k = PrecisionRecall.DefaultK)
    {
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(reference);
        var pr = PrecisionRecall.Compute(reference.PoolFeatures, generated.PoolFeatures, k);
        return new InceptionMetrics(
            FrechetDistance.Compute(generated.Pool, reference.Pool),
            FrechetDistance.Compute(generated.Spatial, reference.Spatial),
            InceptionScore.FromLogits(generated.Logits),
            pr.Precision, pr.Recall, generated.Pool.Count, reference.Pool.Count);
    }

    /// <summary>Featurizes both sets and computes the metrics.</summary>
    /// <param name="network">The FID Inception-v3.</param>
    /// <param name="generated">Generated image batches [n, C, H, W] in [-1, 1].</param>
    /// <param name="reference">Reference image batches.</param>
    /// <param name="progress">Featurization progress, or null.</param>
    public static InceptionMetrics Evaluate(InceptionV3 network, IEnumerable<Tensor> generated, IEnumerable<Tensor> reference,
        IProgress<FeaturizationProgress>? progress = null)
    {
        using var g = Featurize(network, generated, progress: progress);
        using var r = Featurize(network, reference, progress: progress);
        return Compute(g, r);
    }
}
