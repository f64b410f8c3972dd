using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using McDit.MLNet.Evaluation;
using McDit.MLNet.Generation;
using McDit.Torch.Metrics;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace McDit.Cli.Runs;

/// <summary>
/// FD-ResNet18 of a generator's samples against real images, with the real set's feature statistics cached on disk
/// so evaluating many checkpoints featurises it once; and, when given the real training images, the class accuracy of
/// the samples under a classifier trained on them (cached per user), beside its accuracy on the real images.
/// </summary>
public sealed class FdEvaluation : IDisposable
{
    private readonly MLContext _ml;
    private readonly GaussianStatistics _reference;
    private readonly TextWriter _out;
    private readonly ImageClassifier? _classifier;

    /// <summary>
    /// What one evaluation found; also one line of evaluations.jsonl. The accuracy fields are null without a classifier:
    /// <paramref name="ClassAccuracy"/> of the samples, <paramref name="RealClassAccuracy"/> of the real reference images
    /// (the ceiling), the worst class, each class by name, and each class's ceiling on the real reference images
    /// (<paramref name="RealPerClassAccuracy"/>: a class the classifier confuses on real images, such as Fashion-MNIST's
    /// shirts, cannot score higher on samples).
    /// </summary>
    public sealed record Result(long Step, double FrechetDistance, long Samples, long ReferenceCount, string Extractor, string Reference,
        long Seed, int SamplerSteps, double Guidance, double Seconds, double? ClassAccuracy = null, double? RealClassAccuracy = null,
        double? WorstClassAccuracy = null, IReadOnlyDictionary<string, double>? PerClassAccuracy = null,
        IReadOnlyDictionary<string, double>? RealPerClassAccuracy = null);

    /// <summary>The classifier's accuracy on the real reference images (the ceiling of the samples' class accuracy), when it has one.</summary>
    public ClassAccuracy? RealAccuracy { get; }

    /// <summary>Class names by index, when the reference has them.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>Describes the reference set (for output and the log).</summary>
    public string ReferenceName { get; }

    /// <summary>Featurises the reference images (or reads their cached statistics).</summary>
    /// <param name="ml">The context.</param>
    /// <param name="reference">Real held-out images ("Image", and "Label" for class accuracy).</param>
    /// <param name="referenceName">Names the reference in output, the log and the cache.</param>
    /// <param name="cacheFile">The reference statistics file.</param>
    /// <param name="output">Progress and results.</param>
    /// <param name="classifierTraining">Real training images ("Image", "Label") for the class-accuracy classifier (trained
    /// once, cached per user); null for FD only.</param>
    public FdEvaluation(MLContext ml, IDataView reference, string referenceName, string cacheFile, TextWriter output, IDataView? classifierTraining = null)
    {
        _ml = ml;
        _out = output;
        ReferenceName = referenceName;
        long total = reference.GetRowCount() ?? 0;
        var options = new FrechetEvaluationOptions { ReferenceCachePath = cacheFile, Progress = Progress("real images", total) };
        var clock = Stopwatch.StartNew();
        bool cached = File.Exists(cacheFile);
        // The embedded data's held-out features ship with mcdit: its statistics need no featurisation on a new machine.
        bool shipped = !cached && ShippedReferences.TryInstall(referenceName, cacheFile);
        _reference = ml.McDit().ComputeFeatureStatistics(reference, "Image", options);
        _out.WriteLine(cached
            ? $"Reference statistics of {referenceName} read from {cacheFile}."
            : shipped
            ? $"Reference statistics of {referenceName}: from the ResNet-18 features shipped with mcdit, cached in {cacheFile}."
            : string.Create(CultureInfo.InvariantCulture, $"Reference statistics of {referenceName}: {_reference.Count} images in {clock.Elapsed.TotalSeconds:F0} s, cached in {cacheFile}."));
        if (classifierTraining is not null && reference.Schema.GetColumnOrNull("Label") is not null)
        {
            clock.Restart();
            (_classifier, bool trained) = TrainOrLoad(ml, classifierTraining);
            long n = classifierTraining.GetRowCount() ?? 0;
            using var scope = NewDisposeScope();
            var (images, labels, names) = ReadLabeled(reference);
            RealAccuracy = McDit.Torch.Metrics.ClassAccuracy.Compute(_classifier, images, labels);
            // A reference cut down by TakeRows loses its names; the training view has the same classes.
            ClassNames = names ?? (classifierTraining as McDit.MLNet.Data.LabeledImageDataView)?.ClassNames;
            _out.WriteLine(trained
                ? string.Create(CultureInfo.InvariantCulture, $"Class-accuracy classifier: trained on {n} real training images in {clock.Elapsed.TotalSeconds:F0} s (cached); {RealAccuracy.Overall:P1} on the {RealAccuracy.Count} real reference images.")
                : string.Create(CultureInfo.InvariantCulture, $"Class-accuracy classifier read from the cache (the embedded data's ships with McDit); {RealAccuracy.Overall:P1} on the {RealAccuracy.Count} real reference images."));
        }
    }

    static (ImageClassifier, bool) TrainOrLoad(MLContext ml, IDataView training)
    {
        using var scope = NewDisposeScope();
        var (images, labels, names) = ReadLabeled(training);
        int classes = names?.Count ?? (int)labels.max().item<long>() + 1;
        var classifier = ImageClassifierTraining.GetOrTrain(null, images, labels, classes, null, out bool trained);
        return (classifier, trained);
    }

    /// <summary>Images [N, C, H, W] in [-1, 1], labels [N] and class names of a McDit data view.</summary>
    internal static (Tensor Images, Tensor Labels, IReadOnlyList<string>? Names) ReadLabeled(IDataView view)
    {
        var pixels = view.GetColumn<float[]>("Image").ToArray();
        var labels = view.GetColumn<uint>("Label").Select(k => (long)k - 1).ToArray();
        var shape = view.Schema["Image"].Type is VectorDataViewType v && v.Dimensions.Length == 3
            ? new long[] { pixels.Length, v.Dimensions[0], v.Dimensions[1], v.Dimensions[2] }
            : throw new InvalidOperationException("The class-accuracy classifier needs an 'Image' column [C, H, W].");
        var flat = new float[pixels.Sum(p => (long)p.Length)];
        for (int i = 0, o = 0; i < pixels.Length; o += pixels[i].Length, i++) pixels[i].CopyTo(flat, o);
        for (int i = 0; i < flat.Length; i++) flat[i] = flat[i] * 2 - 1;
        var names = view is McDit.MLNet.Data.LabeledImageDataView labeled ? labeled.ClassNames : null;
        return (tensor(flat, shape), tensor(labels), names);
    }

    /// <summary>Where reference statistics of a named data set are cached (per user).</summary>
    public static string DefaultCacheFile(string referenceName)
    {
        var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create);
        if (string.IsNullOrEmpty(root)) root = Path.GetTempPath();
        var safe = string.Concat(referenceName.Select(c => char.IsLetterOrDigit(c) ? c : '-'));
        return Path.Combine(root, "mcdit", "fd-reference", $"{safe}.{ResNet18FeatureExtractor.ExtractorId.Replace('/', '_').Replace('@', '_')}.safetensors");
    }

    /// <summary>" at σ in (a, b]" when the generator guides only inside an interval, else "".</summary>
    public static string DescribeInterval(McDitModel generator)
    {
        var (low, high) = generator.GuidanceInterval;
        if (generator.GuidanceScale == 1.0 || (low == 0 && double.IsPositiveInfinity(high))) return "";
        return double.IsPositiveInfinity(high)
            ? string.Create(CultureInfo.InvariantCulture, $" at σ > {low}")
            : string.Create(CultureInfo.InvariantCulture, $" at σ in ({low}, {high}]");
    }

    /// <summary>Samples <paramref name="samples"/> images (classes in turn) and measures their FD-ResNet18.</summary>
    /// <param name="generator">The model to sample.</param>
    /// <param name="samples">Images to generate, classes in turn (0, 1, …, C − 1, 0, …).</param>
    /// <param name="seed">Seed of the first sample; sample i uses seed + i.</param>
    /// <param name="generated">Told the generated images ([N, C, H, W], model scale [-1, 1]) and the class of each (null for an unconditional model) before they are measured; for
    /// a grid drawn from the same samples. The tensor is disposed after the call.</param>
    public Result Evaluate(McDitModel generator, int samples, long seed, Action<Tensor, IReadOnlyList<int>?>? generated = null)
    {
        var clock = Stopwatch.StartNew();
        var classes = BalancedClasses(samples, generator.NumberOfClasses);
        using var scope = NewDisposeScope();
        _out.WriteLine($"Generating {samples} samples ({generator.SamplingSteps} {generator.Solver} steps, guidance {generator.GuidanceScale.ToString(CultureInfo.InvariantCulture)}{DescribeInterval(generator)})...");
        var images = generator.GenerateDecoded(samples, classes, seed); // decoded: a latent model's samples as images
        generated?.Invoke(images, classes);
        return Measure(images, generator.TrainedSteps, seed, generator.SamplingSteps, generator.GuidanceScale, clock, classes);
    }

    /// <summary>
    /// FD-ResNet18 of given samples (model scale, [-1, 1]) against the reference, and their class accuracy when this
    /// evaluation has a classifier and <paramref name="classes"/> (the class each sample was generated for) is given.
    /// </summary>
    public Result Measure(Tensor images, long step, long seed, int samplerSteps, double guidance, Stopwatch? clock = null, IReadOnlyList<int>? classes = null)
    {
        clock ??= Stopwatch.StartNew();
        var metrics = _ml.McDit().Evaluate(images, _reference, new FrechetEvaluationOptions { Progress = Progress("generated images", images.shape[0]) });
        var result = new Result(step, metrics.FrechetDistance, metrics.GeneratedCount, metrics.ReferenceCount, metrics.ExtractorId,
            ReferenceName, seed, samplerSteps, guidance, 0);
        if (_classifier is not null && classes is not null && RealAccuracy is not null)
        {
            using var scope = NewDisposeScope();
            var accuracy = McDit.Torch.Metrics.ClassAccuracy.Compute(_classifier, images.to(float32, CPU), tensor(classes.Select(c => (long)c).ToArray()));
            result = result with
            {
                ClassAccuracy = Math.Round(accuracy.Overall, 4), RealClassAccuracy = Math.Round(RealAccuracy.Overall, 4),
                WorstClassAccuracy = Math.Round(accuracy.Worst, 4), PerClassAccuracy = accuracy.ByName(ClassNames),
                RealPerClassAccuracy = RealAccuracy.ByName(ClassNames),
            };
        }
        return result with { Seconds = Math.Round(clock.Elapsed.TotalSeconds, 1) };
    }

    /// <summary>"class accuracy 83.0 % (worst: Shirt 52 %; real images 87.6 %)", or null without accuracy.</summary>
    public static string? DescribeAccuracy(Result result)
    {
        if (result.ClassAccuracy is not { } a || result.PerClassAccuracy is not { Count: > 0 } per) return null;
        var worst = per.MinBy(p => p.Value);
        return string.Create(CultureInfo.InvariantCulture,
            $"class accuracy {a:P1} (worst: {worst.Key} {worst.Value:P0}; real images {result.RealClassAccuracy:P1})");
    }

    /// <summary>Class indices for <paramref name="samples"/> balanced samples (null for an unconditional model).</summary>
    public static int[]? BalancedClasses(int samples, int numberOfClasses) =>
        numberOfClasses == 0 ? null : Enumerable.Range(0, samples).Select(i => i % numberOfClasses).ToArray();

    /// <summary>Appends a result to a run's evaluations.jsonl.</summary>
    public static void Append(string file, Result result)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        File.AppendAllText(file, JsonSerializer.Serialize(result, new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        }) + "\n");
    }

    private IProgress<FeaturizationProgress> Progress(string what, long total)
    {
        long lastPercent = -10;
        return new SyncProgress<FeaturizationProgress>(p =>
        {
            long t = p.Total ?? total;
            long percent = t > 0 ? 100 * p.Done / t : 0;
            if (percent - lastPercent < 10 && p.Done != t) return;
            lastPercent = percent;
            _out.WriteLine($"  ResNet-18 features of {what}: {p.Done}/{t}");
        });
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _reference.Dispose();
        _classifier?.Dispose();
    }
}
