using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using McDit.MLNet.Evaluation;
using McDit.MLNet.Generation;
using McDit.Torch.Metrics;
using Microsoft.ML;
using static TorchSharp.torch;

namespace McDit.Cli.Runs;

/// <summary>
/// FD-ResNet18 of a generator's samples against real images, with the real set's feature statistics cached on disk
/// so evaluating many checkpoints featurises it once.
/// </summary>
public sealed class FdEvaluation : IDisposable
{
    private readonly MLContext _ml;
    private readonly GaussianStatistics _reference;
    private readonly TextWriter _out;

    /// <summary>What one evaluation found; also one line of evaluations.jsonl.</summary>
    public sealed record Result(long Step, double FrechetDistance, long Samples, long ReferenceCount, string Extractor, string Reference,
        long Seed, int SamplerSteps, double Guidance, double Seconds);

    /// <summary>Describes the reference set (for output and the log).</summary>
    public string ReferenceName { get; }

    /// <summary>Featurises the reference images (or reads their cached statistics).</summary>
    public FdEvaluation(MLContext ml, IDataView reference, string referenceName, string cacheFile, TextWriter output)
    {
        _ml = ml;
        _out = output;
        ReferenceName = referenceName;
        long total = reference.GetRowCount() ?? 0;
        var options = new FrechetEvaluationOptions { ReferenceCachePath = cacheFile, Progress = Progress("real images", total) };
        var clock = Stopwatch.StartNew();
        bool cached = File.Exists(cacheFile);
        _reference = ml.McDit().ComputeFeatureStatistics(reference, "Image", options);
        _out.WriteLine(cached
            ? $"Reference statistics of {referenceName} read from {cacheFile}."
            : string.Create(CultureInfo.InvariantCulture, $"Reference statistics of {referenceName}: {_reference.Count} images in {clock.Elapsed.TotalSeconds:F0} s, cached in {cacheFile}."));
    }

    /// <summary>Where reference statistics of a named data set are cached (per user).</summary>
    public static string DefaultCacheFile(string referenceName)
    {
        var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create);
        if (string.IsNullOrEmpty(root)) root = Path.GetTempPath();
        var safe = string.Concat(referenceName.Select(c => char.IsLetterOrDigit(c) ? c : '-'));
        return Path.Combine(root, "mcdit", "fd-reference", $"{safe}.{ResNet18FeatureExtractor.ExtractorId.Replace('/', '_').Replace('@', '_')}.safetensors");
    }

    /// <summary>Samples <paramref name="samples"/> images (classes in turn) and measures their FD-ResNet18.</summary>
    public Result Evaluate(McDitModel generator, int samples, long seed)
    {
        var clock = Stopwatch.StartNew();
        var classes = BalancedClasses(samples, generator.NumberOfClasses);
        using var scope = NewDisposeScope();
        _out.WriteLine($"Generating {samples} samples ({generator.SamplingSteps} {generator.Solver} steps, guidance {generator.GuidanceScale.ToString(CultureInfo.InvariantCulture)})...");
        var images = generator.Generate(samples, classes, seed);
        return Measure(images, generator.TrainedSteps, seed, generator.SamplingSteps, generator.GuidanceScale, clock);
    }

    /// <summary>FD-ResNet18 of given samples (model scale, [-1, 1]) against the reference.</summary>
    public Result Measure(Tensor images, long step, long seed, int samplerSteps, double guidance, Stopwatch? clock = null)
    {
        clock ??= Stopwatch.StartNew();
        var metrics = _ml.McDit().Evaluate(images, _reference, new FrechetEvaluationOptions { Progress = Progress("generated images", images.shape[0]) });
        return new Result(step, metrics.FrechetDistance, metrics.GeneratedCount, metrics.ReferenceCount, metrics.ExtractorId,
            ReferenceName, seed, samplerSteps, guidance, Math.Round(clock.Elapsed.TotalSeconds, 1));
    }

    /// <summary>Class indices for <paramref name="samples"/> balanced samples (null for an unconditional model).</summary>
    public static int[]? BalancedClasses(int samples, int numberOfClasses) =>
        numberOfClasses == 0 ? null : Enumerable.Range(0, samples).Select(i => i % numberOfClasses).ToArray();

    /// <summary>Appends a result to a run's evaluations.jsonl.</summary>
    public static void Append(string file, Result result)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        File.AppendAllText(file, JsonSerializer.Serialize(result, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }) + "\n");
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
    public void Dispose() => _reference.Dispose();
}
