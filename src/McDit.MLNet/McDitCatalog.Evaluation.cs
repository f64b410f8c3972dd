using System.Runtime.CompilerServices;
using McDit.MLNet.Evaluation;
using McDit.Torch.Metrics;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML;

/// <summary>Evaluation of generated image sets: <c>mlContext.McDit().Evaluate(generated, reference)</c>.</summary>
public sealed partial class McDitCatalog
{
    static readonly ConditionalWeakTable<IHostEnvironment, ResNet18FeatureExtractor> ResNet18Cache = new();

    /// <summary>
    /// The ResNet-18 featurizer of this context (loaded once per context and model folder): 512-d ImageNet
    /// ResNet-18 features through ML.NET's DnnImageFeaturizer, for FD-ResNet18.
    /// </summary>
    /// <param name="modelDirectory">Folder of the ONNX models; null means <c>DnnImageModels</c> beside the application.</param>
    public ResNet18FeatureExtractor ResNet18Featurizer(string? modelDirectory = null)
    {
        var ml = Environment as MLContext ?? new MLContext();
        if (modelDirectory is not null) return ResNet18FeatureExtractor.Create(ml, modelDirectory);
        lock (ResNet18Cache)
        {
            if (!ResNet18Cache.TryGetValue(Environment, out var extractor))
            {
                extractor = ResNet18FeatureExtractor.Create(ml);
                ResNet18Cache.Add(Environment, extractor);
            }
            return extractor;
        }
    }

    /// <summary>
    /// Fréchet distance between the features of generated and reference images (FD-ResNet18 unless
    /// <see cref="FrechetEvaluationOptions.FeatureExtractor"/> says otherwise). With
    /// <see cref="FrechetEvaluationOptions.ReferenceCachePath"/> the reference set is featurized once and its
    /// statistics are reused by later calls.
    /// </summary>
    /// <param name="generated">Generated images.</param>
    /// <param name="reference">Reference (real) images; not read when the cache file exists.</param>
    /// <param name="imageColumnName">The image column of both views: an ML.NET image column, or a known-size Single
    /// vector [C, H, W] / [H, W] with values in [0, 1] as ExtractPixels (scale 1/255), McDit's loaders and its generator
    /// produce them (grey images get three equal channels).</param>
    /// <param name="options">Batch size, progress, cache file, feature extractor; null for defaults.</param>
    /// <example><code>
    /// var metrics = mlContext.McDit().Evaluate(generated, real, "Image",
    ///     new FrechetEvaluationOptions { ReferenceCachePath = "fmnist-resnet18.safetensors" });
    /// Console.WriteLine(metrics.FrechetDistance);
    /// </code></example>
    public FrechetDistanceMetrics Evaluate(IDataView generated, IDataView reference, string imageColumnName = "Image",
        FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(reference);
        options ??= new FrechetEvaluationOptions();
        using var referenceStats = ComputeFeatureStatistics(reference, imageColumnName, options);
        return Evaluate(generated, referenceStats, imageColumnName, options);
    }

    /// <summary>
    /// Fréchet distance between generated and real images read from two different columns (for example the generator's
    /// <c>GeneratedPixels</c> against the data's <c>Image</c>), and — when <see cref="FrechetEvaluationOptions.Classifier"/>
    /// or <see cref="FrechetEvaluationOptions.ClassifierTrainingData"/> is set — the class accuracy of the generated
    /// images (by the <paramref name="labelColumnName"/> each was generated for) beside the same classifier's accuracy on
    /// the real images, its ceiling.
    /// </summary>
    /// <param name="generated">Generated images, with the label column when class accuracy is asked for.</param>
    /// <param name="real">Real (held-out) images, with the label column when class accuracy is asked for; not read for FD when the cache file exists.</param>
    /// <param name="generatedColumnName">The image column of <paramref name="generated"/>.</param>
    /// <param name="realColumnName">The image column of <paramref name="real"/>.</param>
    /// <param name="labelColumnName">The class column of both views (a key, or whole numbers); read only for class accuracy.</param>
    /// <param name="options">Batch size, progress, cache file, feature extractor, classifier; null for defaults.</param>
    /// <example><code>
    /// var metrics = mlContext.McDit().Evaluate(model.Transform(heldOut), heldOut, "GeneratedPixels", "Image",
    ///     options: new FrechetEvaluationOptions { ClassifierTrainingData = train });
    /// Console.WriteLine($"{metrics.FrechetDistance:F1}, {metrics.ClassAccuracy!.Overall:P0} of {metrics.RealClassAccuracy!.Overall:P0}");
    /// </code></example>
    public FrechetDistanceMetrics Evaluate(IDataView generated, IDataView real, string generatedColumnName, string realColumnName,
        string labelColumnName = "Label", FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(real);
        ArgumentException.ThrowIfNullOrWhiteSpace(generatedColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(realColumnName);
        options ??= new FrechetEvaluationOptions();
        FrechetDistanceMetrics metrics;
        using (var referenceStats = ComputeFeatureStatistics(real, realColumnName, options))
            metrics = Evaluate(generated, referenceStats, generatedColumnName, options);
        var classifier = options.Classifier;
        bool own = false;
        if (classifier is null && options.ClassifierTrainingData is { } training)
        {
            classifier = TrainClassifier(training, realColumnName, labelColumnName);
            own = true;
        }
        if (classifier is null) return metrics;
        try
        {
            using var scope = torch.NewDisposeScope();
            var (gImages, gLabels, _, _) = LabeledImageReader.Read(generated, generatedColumnName, labelColumnName, "generated");
            var (rImages, rLabels, _, names) = LabeledImageReader.Read(real, realColumnName, labelColumnName, "real");
            return new FrechetDistanceMetrics(metrics.FrechetDistance, metrics.ExtractorId, metrics.FeatureDimension, metrics.GeneratedCount, metrics.ReferenceCount)
            {
                ClassAccuracy = ClassAccuracy.Compute(classifier, gImages, gLabels),
                RealClassAccuracy = ClassAccuracy.Compute(classifier, rImages, rLabels),
                ClassNames = names,
            };
        }
        finally
        {
            if (own) classifier.Dispose();
        }
    }

    /// <summary>
    /// The classifier of the class-accuracy metric for these real training images: read from the per-user cache when
    /// one was trained on the same images, labels and options, else the one McDit ships for the embedded Fashion-MNIST
    /// training images when these are they, otherwise trained (deterministically, on the CPU; about 8–40 s for 6,000
    /// 28×28 images) and cached. The caller disposes it.
    /// </summary>
    /// <param name="training">Real training images with their classes.</param>
    /// <param name="imageColumnName">A known-size Single vector column [C, H, W] or [H, W] in [0, 1].</param>
    /// <param name="labelColumnName">The class column (a key, or whole numbers).</param>
    /// <param name="cachePath">The classifier file; null for the per-user cache (<see cref="ImageClassifierTraining.DefaultCachePath"/>).</param>
    /// <param name="options">Training options; null for defaults.</param>
    public ImageClassifier TrainClassifier(IDataView training, string imageColumnName = "Image", string labelColumnName = "Label",
        string? cachePath = null, ImageClassifierOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(training);
        using var scope = torch.NewDisposeScope();
        var (images, labels, classes, _) = LabeledImageReader.Read(training, imageColumnName, labelColumnName, "classifier training");
        if (classes < 2)
            throw new ArgumentOutOfRangeException(nameof(training), $"Label column '{labelColumnName}' has {classes} class(es); a classifier needs at least 2.");
        return ImageClassifierTraining.GetOrTrain(cachePath, images, labels, classes, options, out _);
    }

    /// <summary>Fréchet distance between the features of generated images and precomputed reference statistics.</summary>
    /// <param name="generated">Generated images.</param>
    /// <param name="reference">Reference statistics, for example from <see cref="ComputeFeatureStatistics(IDataView, string, FrechetEvaluationOptions?)"/>
    /// or <see cref="GaussianStatistics.Load"/>.</param>
    /// <param name="imageColumnName">The image column (see <see cref="Evaluate(IDataView, IDataView, string, FrechetEvaluationOptions?)"/>).</param>
    /// <param name="options">Batch size, progress, feature extractor; null for defaults (the cache path is not used).</param>
    public FrechetDistanceMetrics Evaluate(IDataView generated, GaussianStatistics reference, string imageColumnName = "Image",
        FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        options ??= new FrechetEvaluationOptions();
        var extractor = ExtractorFor(options);
        CheckReference(extractor, reference);
        using var stats = ImageSetFeaturizer.Statistics(generated, imageColumnName, extractor, options.BatchSize, options.Progress);
        return Metrics(extractor, stats, reference);
    }

    /// <summary>Fréchet distance between the features of generated and reference image tensors [N, C, H, W] in [-1, 1].</summary>
    /// <param name="generated">Generated images (C = 1 or 3).</param>
    /// <param name="reference">Reference images; not read when the cache file exists.</param>
    /// <param name="options">Batch size, progress, cache file, feature extractor; null for defaults.</param>
    public FrechetDistanceMetrics Evaluate(torch.Tensor generated, torch.Tensor reference, FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        options ??= new FrechetEvaluationOptions();
        using var referenceStats = ComputeFeatureStatistics(reference, options);
        return Evaluate(generated, referenceStats, options);
    }

    /// <summary>Fréchet distance between the features of generated image tensors and precomputed reference statistics.</summary>
    /// <param name="generated">Generated images [N, C, H, W] in [-1, 1].</param>
    /// <param name="reference">Reference statistics.</param>
    /// <param name="options">Batch size, progress, feature extractor; null for defaults (the cache path is not used).</param>
    public FrechetDistanceMetrics Evaluate(torch.Tensor generated, GaussianStatistics reference, FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(reference);
        options ??= new FrechetEvaluationOptions();
        var extractor = ExtractorFor(options);
        CheckReference(extractor, reference);
        using var stats = FidEvaluator.ComputeStatistics(extractor, generated, options.BatchSize, options.Progress);
        return Metrics(extractor, stats, reference);
    }

    /// <summary>
    /// Feature statistics (μ, Σ, count, extractor id) of an image set, read from / written to
    /// <see cref="FrechetEvaluationOptions.ReferenceCachePath"/> when it is set.
    /// </summary>
    /// <param name="images">The images.</param>
    /// <param name="imageColumnName">The image column (see <see cref="Evaluate(IDataView, IDataView, string, FrechetEvaluationOptions?)"/>).</param>
    /// <param name="options">Batch size, progress, cache file, feature extractor; null for defaults.</param>
    /// <exception cref="InvalidDataException">The cache file was made with another feature extractor.</exception>
    public GaussianStatistics ComputeFeatureStatistics(IDataView images, string imageColumnName = "Image",
        FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        options ??= new FrechetEvaluationOptions();
        var extractor = ExtractorFor(options);
        return Cached(options, extractor,
            () => ImageSetFeaturizer.Statistics(images, imageColumnName, extractor, options.BatchSize, options.Progress));
    }

    /// <summary>Feature statistics of image tensors [N, C, H, W] in [-1, 1], cached like
    /// <see cref="ComputeFeatureStatistics(IDataView, string, FrechetEvaluationOptions?)"/>.</summary>
    /// <param name="images">The images.</param>
    /// <param name="options">Batch size, progress, cache file, feature extractor; null for defaults.</param>
    public GaussianStatistics ComputeFeatureStatistics(torch.Tensor images, FrechetEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        options ??= new FrechetEvaluationOptions();
        var extractor = ExtractorFor(options);
        return Cached(options, extractor,
            () => FidEvaluator.ComputeStatistics(extractor, images, options.BatchSize, options.Progress));
    }

    IFeatureExtractor ExtractorFor(FrechetEvaluationOptions options) =>
        options.FeatureExtractor ?? ResNet18Featurizer(options.ModelDirectory);

    static GaussianStatistics Cached(FrechetEvaluationOptions options, IFeatureExtractor extractor, Func<GaussianStatistics> compute)
    {
        var path = options.ReferenceCachePath;
        if (path is not null && File.Exists(path)) return GaussianStatistics.Load(path, extractor.Id);
        var stats = compute();
        if (path is not null) stats.Save(path);
        return stats;
    }

    static void CheckReference(IFeatureExtractor extractor, GaussianStatistics reference)
    {
        if (reference.Dimension != extractor.Dimension || (reference.ExtractorId is not null && reference.ExtractorId != extractor.Id))
            throw new ArgumentException(
                $"The reference statistics were made with '{reference.ExtractorId ?? "(unknown)"}' ({reference.Dimension}-d); " +
                $"this evaluation uses '{extractor.Id}' ({extractor.Dimension}-d).", nameof(reference));
    }

    static FrechetDistanceMetrics Metrics(IFeatureExtractor extractor, GaussianStatistics generated, GaussianStatistics reference) =>
        new(FrechetDistance.Compute(generated, reference), extractor.Id, extractor.Dimension, generated.Count, reference.Count);
}
