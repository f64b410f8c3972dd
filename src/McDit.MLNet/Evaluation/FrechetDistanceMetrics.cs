using System.Globalization;
using McDit.Torch.Metrics;
using Microsoft.ML;

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

    /// <summary>
    /// Class accuracy of the generated images: the fraction a classifier trained on real training images assigns to the
    /// class they were generated for (the label column), overall and per class; null when no classifier was asked for.
    /// </summary>
    public ClassAccuracy? ClassAccuracy { get; init; }

    /// <summary>The same classifier's accuracy on the real (reference) images: the ceiling for <see cref="ClassAccuracy"/>.</summary>
    public ClassAccuracy? RealClassAccuracy { get; init; }

    /// <summary>Class names by index (from the label column's key values), when known.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"FD {FrechetDistance:G6} ({ExtractorId}, {GeneratedCount} generated vs {ReferenceCount} reference images)") +
        (ClassAccuracy is { } a ? string.Create(CultureInfo.InvariantCulture,
            $"; class accuracy {a.Overall:P1} (worst class {a.Worst:P0}; real images {RealClassAccuracy?.Overall ?? double.NaN:P1})") : "");
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

    /// <summary>
    /// The classifier of the class-accuracy metric (trained on real training images of the same size, for example by
    /// <c>mlContext.McDit().TrainClassifier(train)</c>); with it, <c>Evaluate</c> also reports class accuracy of the
    /// generated and of the real images. Not disposed by the evaluation. Null: see <see cref="ClassifierTrainingData"/>.
    /// </summary>
    public ImageClassifier? Classifier { get; set; }

    /// <summary>
    /// Real training images (with the label column) to train the classifier on when <see cref="Classifier"/> is null:
    /// trained once and cached per user (<see cref="ImageClassifierTraining.DefaultCachePath"/>). Null with no
    /// <see cref="Classifier"/>: no class accuracy.
    /// </summary>
    public IDataView? ClassifierTrainingData { get; set; }

    /// <summary>Folder of the ResNet-18 ONNX models when <see cref="FeatureExtractor"/> is null; null means
    /// <c>DnnImageModels</c> beside the application.</summary>
    public string? ModelDirectory { get; set; }
}
