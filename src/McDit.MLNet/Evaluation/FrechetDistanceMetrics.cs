using System.Globalization;
using McDit.Torch.Metrics;

namespace McDit.MLNet.Evaluation;

/// <summary>The result of <c>mlContext.McDit().Evaluate(...)</c>: a Fréchet distance and what it was computed from.</summary>
public sealed class FrechetDistanceMetrics
{
    internal FrechetDistanceMetrics(double frechetDistance, string extractorId, int featureDimension, long generatedCount, long referenceCount)
    {
        FrechetDistance = frechetDistance;
        ExtractorId = extractorId;
        FeatureDimension = featureDimension;
        GeneratedCount = generatedCount;
        ReferenceCount = referenceCount;
    }

    /// <summary>‖μg − μr‖² + Tr(Σg + Σr − 2(ΣgΣr)^½) of the two feature sets (FD-ResNet18 by default; FID with Inception).</summary>
    public double FrechetDistance { get; }

    /// <summary>The feature extractor's id (for example <see cref="ResNet18FeatureExtractor.ExtractorId"/>).</summary>
    public string ExtractorId { get; }

    /// <summary>Feature dimension.</summary>
    public int FeatureDimension { get; }

    /// <summary>Number of generated images.</summary>
    public long GeneratedCount { get; }

    /// <summary>Number of reference images (from the cache when one was used).</summary>
    public long ReferenceCount { get; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"FD {FrechetDistance:G6} ({ExtractorId}, {GeneratedCount} generated vs {ReferenceCount} reference images)");
}

/// <summary>Options of McDit's image-set evaluations.</summary>
public sealed class FrechetEvaluationOptions
{
    /// <summary>Images per featurization batch (and per progress report).</summary>
    public int BatchSize { get; set; } = FidEvaluator.DefaultBatchSize;

    /// <summary>Receives the running number of featurized images, or null.</summary>
    public IProgress<FeaturizationProgress>? Progress { get; set; }

    /// <summary>
    /// Reference statistics file: read when it exists (and was made with the same extractor, otherwise refused),
    /// written after featurizing the reference set when it does not. Null: no cache.
    /// </summary>
    public string? ReferenceCachePath { get; set; }

    /// <summary>The feature extractor; null means ResNet-18 (FD-ResNet18). Not disposed by the evaluation.</summary>
    public IFeatureExtractor? FeatureExtractor { get; set; }

    /// <summary>Folder of the ResNet-18 ONNX models when <see cref="FeatureExtractor"/> is null; null means
    /// <c>DnnImageModels</c> beside the application.</summary>
    public string? ModelDirectory { get; set; }
}
