using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>Progress of a featurization: images done so far out of the total (null when unknown).</summary>
/// <param name="Done">Images featurized so far.</param>
/// <param name="Total">All images, when known.</param>
public readonly record struct FeaturizationProgress(long Done, long? Total);

/// <summary>
/// Fréchet distances from images with any <see cref="IFeatureExtractor"/>: statistics of image tensors or of a
/// stream of batches, reference statistics cached in a file (so many checkpoints featurize the real set once),
/// and the distance of generated images to them.
/// </summary>
public static class FidEvaluator
{
    /// <summary>Default images per extractor call.</summary>
    public const int DefaultBatchSize = 64;

    /// <summary>Statistics of the features of a stream of image batches [n, C, H, W] in [-1, 1].</summary>
    /// <param name="extractor">The feature extractor.</param>
    /// <param name="batches">Image batches; each is only read.</param>
    /// <param name="progress">Receives the running count after each batch, or null.</param>
    /// <param name="total">The total number of images, when known (reported with the progress).</param>
    public static GaussianStatistics ComputeStatistics(IFeatureExtractor extractor, IEnumerable<Tensor> batches,
        IProgress<FeaturizationProgress>? progress = null, long? total = null)
    {
        ArgumentNullException.ThrowIfNull(extractor);
        ArgumentNullException.ThrowIfNull(batches);
        using var acc = new GaussianStatisticsAccumulator(extractor.Dimension, extractor.Id);
        foreach (var batch in batches)
        {
            using var features = extractor.Extract(batch);
            acc.Add(features);
            progress?.Report(new FeaturizationProgress(acc.Count, total));
        }
        return acc.ToStatistics();
    }

    /// <summary>Statistics of the features of images [N, C, H, W] in [-1, 1], featurized in batches.</summary>
    /// <param name="extractor">The feature extractor.</param>
    /// <param name="images">All images.</param>
    /// <param name="batchSize">Images per extractor call.</param>
    /// <param name="progress">Receives the running count after each batch, or null.</param>
    public static GaussianStatistics ComputeStatistics(IFeatureExtractor extractor, Tensor images,
        int batchSize = DefaultBatchSize, IProgress<FeaturizationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ComputeStatistics(extractor, Batches(images, batchSize), progress, images.shape[0]);
    }

    /// <summary>
    /// Reference statistics from <paramref name="cachePath"/> when it exists and was made with the same extractor;
    /// otherwise computed from <paramref name="batches"/> and saved there. A cache made with another extractor is
    /// refused with <see cref="InvalidDataException"/>, never overwritten silently.
    /// </summary>
    /// <param name="extractor">The feature extractor.</param>
    /// <param name="cachePath">The statistics file (safetensors, see <see cref="GaussianStatistics.Save"/>).</param>
    /// <param name="batches">Makes the reference batches; called only when the cache is missing.</param>
    /// <param name="progress">Featurization progress, or null.</param>
    public static GaussianStatistics GetOrComputeReference(IFeatureExtractor extractor, string cachePath,
        Func<IEnumerable<Tensor>> batches, IProgress<FeaturizationProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(extractor);
        ArgumentException.ThrowIfNullOrEmpty(cachePath);
        ArgumentNullException.ThrowIfNull(batches);
        if (File.Exists(cachePath)) return GaussianStatistics.Load(cachePath, extractor.Id);
        var stats = ComputeStatistics(extractor, batches(), progress);
        stats.Save(cachePath);
        return stats;
    }

    /// <summary>The Fréchet distance between the features of <paramref name="generated"/> and reference statistics.</summary>
    /// <param name="extractor">The feature extractor the reference statistics were made with.</param>
    /// <param name="generated">Generated images [N, C, H, W] in [-1, 1].</param>
    /// <param name="reference">Reference statistics.</param>
    /// <param name="batchSize">Images per extractor call.</param>
    /// <exception cref="ArgumentException">The reference was made with another extractor.</exception>
    public static double Compute(IFeatureExtractor extractor, Tensor generated, GaussianStatistics reference,
        int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(extractor);
        ArgumentNullException.ThrowIfNull(reference);
        CheckSameExtractor(extractor, reference);
        using var stats = ComputeStatistics(extractor, generated, batchSize);
        return FrechetDistance.Compute(stats, reference);
    }

    /// <summary>The Fréchet distance between the features of two image sets.</summary>
    public static double Compute(IFeatureExtractor extractor, Tensor generated, Tensor reference, int batchSize = DefaultBatchSize)
    {
        using var refStats = ComputeStatistics(extractor, reference, batchSize);
        return Compute(extractor, generated, refStats, batchSize);
    }

    internal static void CheckSameExtractor(IFeatureExtractor extractor, GaussianStatistics reference)
    {
        if (reference.ExtractorId is not null && reference.ExtractorId != extractor.Id)
            throw new ArgumentException(
                $"The reference statistics were made with feature extractor '{reference.ExtractorId}', not '{extractor.Id}'.",
                nameof(reference));
    }

    /// <summary>Consecutive views of at most <paramref name="batchSize"/> rows.</summary>
    public static IEnumerable<Tensor> Batches(Tensor images, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        long n = images.shape[0];
        for (long s = 0; s < n; s += batchSize)
        {
            using var view = images.narrow(0, s, Math.Min(batchSize, n - s));
            yield return view;
        }
    }
}
