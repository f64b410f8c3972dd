using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using McDit.MLNet.Evaluation;
using McDit.MLNet.Imaging;
using McDit.MLNet.Trainers;
using McDit.Torch.Diffusion;
using McDit.Torch.Metrics;
using McDit.Torch.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Comparison;

/// <summary>
/// Trains several arms (DiT, MaskDiT, MC-DiT and ablations of MC-DiT) on the same data, backbone, batch, learning rate,
/// schedule and seeds, measures FD-ResNet18 (and class accuracy, given a classifier) of each arm's weight EMA at
/// fixed steps and at an equal training time, and writes one folder: <c>table.md</c>, <c>table.csv</c>,
/// <c>results.json</c>, the curves against steps and seconds (PNG), every run's final grid (<c>grids/</c>) and the
/// arms' grids side by side (<c>grids.png</c>). Each finished run is saved in <c>runs/</c> at once; started again on
/// the same folder with the same settings, the comparison reuses the finished runs and trains only the missing ones.
/// This is the code behind <c>mcdit compare</c> and notebook 03.
/// </summary>
public sealed class MethodComparison
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, Converters = { new JsonStringEnumConverter() },
    };

    private readonly MLContext _ml;
    private readonly ComparisonOptions _options;
    private Func<Tensor, IReadOnlyList<int>, McDit.Torch.Metrics.ClassAccuracy>? _accuracy;
    private McDit.Torch.Metrics.ImageClassifier? _classifier;

    /// <summary>A comparison with the given settings (checked here).</summary>
    public MethodComparison(MLContext ml, ComparisonOptions options)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
    }

    /// <summary>
    /// Runs the comparison and writes its folder.
    /// </summary>
    /// <param name="train">Training rows (the image and label columns of <see cref="ComparisonOptions.Training"/>).</param>
    /// <param name="reference">Real held-out rows (same columns): the FD reference and the accuracy ceiling.</param>
    /// <param name="referenceCachePath">Where the reference's feature statistics are cached (null: computed every time).</param>
    /// <param name="dataDescription">Describes the data in the report and the fingerprint of each run (e.g. "embedded Fashion-MNIST, 6000 images").</param>
    public ComparisonResult Run(IDataView train, IDataView reference, string? referenceCachePath = null, string dataDescription = "")
    {
        try
        {
            return RunCore(train, reference, referenceCachePath, dataDescription);
        }
        finally
        {
            _classifier?.Dispose();
            _classifier = null;
            _accuracy = null;
        }
    }

    private ComparisonResult RunCore(IDataView train, IDataView reference, string? referenceCachePath, string dataDescription)
    {
        McDit.Torch.Runtime.TorchBackend.EnsureInitialized(); // before the first torch call (notebooks load the native library here)
        var o = _options;
        var log = o.Progress ?? TextWriter.Null;
        var folder = Path.GetFullPath(o.OutputFolder);
        Directory.CreateDirectory(Path.Combine(folder, "runs"));
        Directory.CreateDirectory(Path.Combine(folder, "grids"));
        long referenceRows = reference.GetRowCount() ?? 0, lastReported = -1;
        var fdOptions = new FrechetEvaluationOptions
        {
            ReferenceCachePath = referenceCachePath,
            Progress = new ProgressLine(p =>
            {
                long all = p.Total ?? referenceRows;
                if (all <= 0 || (p.Done != all && 4 * p.Done / all == 4 * lastReported / Math.Max(1, all))) return;
                lastReported = p.Done;
                log.WriteLine($"  ResNet-18 features of the reference images: {p.Done}/{all}");
            }),
        };

        log.WriteLine($"Comparison of {string.Join(", ", o.Variants.Select(v => v.Name))} over seeds {string.Join(",", o.Seeds)}: " +
            $"{o.Training.Model}, {o.Training.NumberOfSteps}+{o.Training.UnmaskTuningSteps} steps of {o.Training.BatchSize}, " +
            $"{torch.get_num_threads()} torch thread(s); writing {folder}");
        var clock = Stopwatch.StartNew();
        using var referenceStats = _ml.McDit().ComputeFeatureStatistics(reference, o.Training.ImageColumnName, fdOptions);
        var (realTrain, _) = ReadImages(train, o.FdSamples, shuffleSeed: 0);
        double realFd;
        using (realTrain) realFd = _ml.McDit().Evaluate(realTrain, referenceStats, new FrechetEvaluationOptions()).FrechetDistance;
        var accuracyOf = o.ClassAccuracy;
        if (accuracyOf is null && o.MeasureClassAccuracy && o.Training.LabelColumnName is not null)
        {
            var (images, classes) = ReadImages(train, int.MaxValue, shuffleSeed: null);
            int numberOfClasses = classes.Length == 0 ? 0 : classes.Max() + 1;
            if (ClassNamesOf(train) is { Count: > 0 } named) numberOfClasses = Math.Max(numberOfClasses, named.Count);
            using (images)
            using (var labels = torch.tensor(classes.Select(c => (long)c).ToArray()))
            {
                var classifierClock = Stopwatch.StartNew();
                var classifier = ImageClassifierTraining.GetOrTrain(null, images, labels, numberOfClasses, options: null, out bool trained);
                log.WriteLine(trained
                    ? FormattableString.Invariant($"Class-accuracy classifier trained on {classes.Length} training images in {classifierClock.Elapsed.TotalSeconds:F0} s (cached).")
                    : "Class-accuracy classifier read from the per-user cache.");
                _classifier = classifier;
                accuracyOf = (x, c) =>
                {
                    using var y = torch.tensor(c.Select(v => (long)v).ToArray());
                    return McDit.Torch.Metrics.ClassAccuracy.Compute(classifier, x, y);
                };
            }
        }
        _accuracy = accuracyOf;
        double? realAccuracy = null;
        if (accuracyOf is not null)
        {
            var (realHeldOut, labels) = ReadImages(reference, int.MaxValue, shuffleSeed: null);
            using (realHeldOut) realAccuracy = accuracyOf(realHeldOut, labels).Overall;
        }
        var ceiling = realAccuracy is { } ra ? FormattableString.Invariant($", class accuracy of the real held-out images {100 * ra:F1} %") : "";
        log.WriteLine(FormattableString.Invariant(
            $"Reference: {referenceStats.Count} real held-out images; FD of {o.FdSamples} real training images {realFd:F1}{ceiling} ({clock.Elapsed.TotalSeconds:F0} s)."));

        var settings = SettingsFingerprint(dataDescription);
        var runs = new List<ComparisonRun>();
        IReadOnlyList<string>? classNames = null;
        int total = o.Seeds.Count * o.Variants.Count, index = 0;
        foreach (var seed in o.Seeds)
        {
            double? budget = o.TimeBudgetSeconds;
            for (int v = 0; v < o.Variants.Count; v++)
            {
                index++;
                var variant = o.Variants[v];
                var label = $"[{index}/{total}] {variant.Name} seed {seed}";
                string fingerprint = Hash($"{settings}|{JsonSerializer.Serialize(variant, Json)}|{seed}|{budget?.ToString("R", CultureInfo.InvariantCulture) ?? "first"}");
                var runFile = Path.Combine(folder, "runs", $"{variant.Slug}-seed{seed}.json");
                var run = TryLoad(runFile, fingerprint);
                if (run is not null) log.WriteLine($"{label}: reusing the finished run in {runFile}.");
                else
                {
                    o.CancellationToken.ThrowIfCancellationRequested();
                    run = Train(train, referenceStats, variant, seed, budget, fingerprint, folder, label, log, ref classNames);
                    McDit.Torch.IO.AtomicFile.Write(runFile, s => JsonSerializer.Serialize(s, run, Json));
                }
                if (v == 0 && budget is null)
                {
                    // The first arm's own training time is the budget of the others; its last measurement is its equal-time one.
                    budget = o.Clock == ComparisonClock.Wall ? run.WallSeconds : run.CpuSeconds;
                    var last = run.Measurements[^1] with { AtTimeBudget = true };
                    run = run with { TimeBudgetSeconds = budget.Value, ReachedTimeBudget = true, Measurements = run.Measurements.Take(run.Measurements.Count - 1).Append(last).ToList() };
                }
                runs.Add(run);
            }
        }
        var result = new ComparisonResult(folder, o.Variants, o.Seeds, runs, o.Clock, o.FdSamples, referenceStats.Count, realFd, realAccuracy,
            classNames ?? ClassNamesOf(train));
        ComparisonReport.Write(result, o, dataDescription);
        log.WriteLine($"Comparison written to {result.TableFile} ({clock.Elapsed.TotalMinutes:F1} min).");
        return result;
    }

    private ComparisonRun Train(IDataView train, GaussianStatistics reference, ComparisonVariant variant, int seed, double? budget,
        string fingerprint, string folder, string label, TextWriter log, ref IReadOnlyList<string>? classNames)
    {
        var o = _options;
        var t = o.Training.Clone();
        t.Method = variant.Method.Method;
        t.MethodOptions = variant.Method;
        t.Seed = seed;
        t.CheckpointFolder = null;
        t.ResumeFromCheckpoint = false;
        t.CancellationToken = o.CancellationToken;
        var measurements = new List<ComparisonMeasurement>();
        var gridFile = Path.Combine("grids", $"{variant.Slug}-seed{seed}.png");
        double measureWall = 0, measureCpu = 0, cpuStart = CpuSeconds(), lossSum = 0;
        int lossCount = 0;
        bool budgetDone = false, reachedBudget = budget is null;
        var lastProgress = Stopwatch.StartNew();
        double wall = 0, cpu = 0;
        IReadOnlyList<string>? names = null;
        t.StepCallback = s =>
        {
            wall = s.Elapsed.TotalSeconds - measureWall;
            cpu = CpuSeconds() - cpuStart - measureCpu;
            names ??= s.ClassNames;
            lossSum += s.Loss.Denoising;
            lossCount++;
            bool last = s.Step == s.TotalSteps;
            bool scheduled = last || (o.EvaluateEvery > 0 && s.Step % o.EvaluateEvery == 0);
            bool atBudget = budget is { } b && !budgetDone && (o.Clock == ComparisonClock.Wall ? wall : cpu) >= b;
            if (atBudget) { budgetDone = true; reachedBudget = true; }
            if (scheduled || atBudget)
            {
                var mClock = Stopwatch.StartNew();
                double mCpu = CpuSeconds();
                var classes = Enumerable.Range(0, o.FdSamples).Select(i => s.NumberOfClasses == 0 ? 0 : i % s.NumberOfClasses).ToArray();
                double fd;
                McDit.Torch.Metrics.ClassAccuracy? accuracy = null;
                using (var scope = NewDisposeScope())
                {
                    var samples = Generate(s, s.NumberOfClasses == 0 ? null : classes, o.FdSamples, o.SampleSeed);
                    fd = _ml.McDit().Evaluate(samples, reference, new FrechetEvaluationOptions()).FrechetDistance;
                    if (_accuracy is not null && s.NumberOfClasses > 0) accuracy = _accuracy(samples, classes);
                }
                measurements.Add(new ComparisonMeasurement(s.Step, s.Stage, Math.Round(wall, 3), Math.Round(cpu, 3),
                    lossCount > 0 ? lossSum / lossCount : double.NaN, fd, accuracy?.Overall, accuracy?.PerClass.Select(a => Math.Round(a, 4)).ToArray(), scheduled, atBudget));
                lossSum = 0;
                lossCount = 0;
                if (last)
                {
                    int rows = Math.Max(1, s.NumberOfClasses);
                    var gridClasses = Enumerable.Range(0, rows).SelectMany(c => Enumerable.Repeat(c, o.GridColumns)).ToArray();
                    using var scope = NewDisposeScope();
                    var images = Generate(s, s.NumberOfClasses == 0 ? null : gridClasses, gridClasses.Length, o.SampleSeed + 1);
                    ImageGrid.SavePng(images, o.GridColumns, Path.Combine(folder, gridFile), scale: 2, rowLabels: s.ClassNames);
                }
                measureWall += mClock.Elapsed.TotalSeconds;
                measureCpu += CpuSeconds() - mCpu;
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{label}: step {s.Step}/{s.TotalSteps}{(atBudget ? $" (training time reached the budget, {budget:F0} s)" : "")}: " +
                    $"FD {fd:F1}{(accuracy is null ? "" : $", class accuracy {100 * accuracy.Overall:F1} %")}; " +
                    $"{wall:F0} s wall / {cpu:F0} s CPU of training; measured in {mClock.Elapsed.TotalSeconds:F0} s"));
                lastProgress.Restart();
            }
            else if (lastProgress.Elapsed >= o.ProgressInterval)
            {
                lastProgress.Restart();
                double rate = s.Step / Math.Max(1e-9, wall);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{label}: step {s.Step}/{s.TotalSteps} (stage {s.Stage}), loss {s.Loss.Total:F4}, {rate:F2} steps/s, " +
                    $"about {(s.TotalSteps - s.Step) / Math.Max(1e-9, rate) / 60:F1} min of training left"));
            }
        };
        var model = _ml.McDit().Trainers.DiffusionTransformer(t).Fit(train);
        long parameters = model.Network.ParameterCount(trainableOnly: true);
        model.Network.Dispose();
        classNames ??= names;
        return new ComparisonRun(variant.Name, seed, fingerprint, parameters, model.TrainedSteps, Math.Round(wall, 3), Math.Round(cpu, 3),
            budget ?? 0, reachedBudget, measurements, gridFile);
    }

    // Samples in sampler runs of at most GenerationBatchSize images (chunk k starts from seed + k), so memory stays bounded.
    private Tensor Generate(McDitTrainingStep step, int[]? classes, int count, long seed)
    {
        int chunk = Math.Max(1, _options.Training.GenerationBatchSize);
        var parts = new List<Tensor>();
        for (int start = 0, k = 0; start < count; start += chunk, k++)
        {
            int n = Math.Min(chunk, count - start);
            parts.Add(step.Generate(classes?.Skip(start).Take(n).ToArray(), n, seed + 1_000_003L * k, Sampler(step.NumberOfClasses)));
        }
        return parts.Count == 1 ? parts[0] : torch.cat(parts, 0);
    }

    private sealed class ProgressLine(Action<FeaturizationProgress> report) : IProgress<FeaturizationProgress>
    {
        public void Report(FeaturizationProgress value) => report(value);
    }

    private SamplerOptions Sampler(int numberOfClasses) => new()
    {
        Steps = _options.Sampler.Steps, Solver = _options.Sampler.Solver, GuidanceScale = _options.Sampler.GuidanceScale,
        SigmaMin = _options.Sampler.SigmaMin, SigmaMax = _options.Sampler.SigmaMax, Rho = _options.Sampler.Rho,
        GuidanceSigmaMin = _options.Sampler.GuidanceSigmaMin, GuidanceSigmaMax = _options.Sampler.GuidanceSigmaMax,
        AlternatingShift = _options.Sampler.AlternatingShift, AlternatingShiftSigmaMax = _options.Sampler.AlternatingShiftSigmaMax,
        NullLabel = _options.Sampler.NullLabel ?? numberOfClasses,
    };

    private static double CpuSeconds()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>Everything a run depends on besides its arm, seed and budget.</summary>
    private string SettingsFingerprint(string data)
    {
        var t = _options.Training;
        var s = _options.Sampler;
        return string.Join('|', new object?[]
        {
            "v1", data, t.ImageColumnName, t.LabelColumnName, t.Model, t.ModelConfig is null ? "" : JsonSerializer.Serialize(t.ModelConfig, Json),
            t.NumberOfSteps, t.UnmaskTuningSteps, t.BatchSize, t.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            t.WeightDecay.ToString("R", CultureInfo.InvariantCulture), t.EmaDecay.ToString("R", CultureInfo.InvariantCulture),
            t.GradientClipNorm.ToString("R", CultureInfo.InvariantCulture), t.Precision, t.InputMinimum, t.InputMaximum,
            _options.EvaluateEvery, _options.FdSamples, s.Steps, s.Solver, s.GuidanceScale.ToString("R", CultureInfo.InvariantCulture),
            _options.SampleSeed, _options.GridColumns, _options.Clock, _options.ClassAccuracy is not null ? "fd+custom-accuracy" : _options.MeasureClassAccuracy ? "fd+accuracy" : "fd",
        }.Concat(t.LearningRateWarmupSteps > 0 || t.LearningRateDecay != LearningRateDecay.Constant
            ? new object?[] { "lr-schedule", t.LearningRateWarmupSteps, t.LearningRateDecay } // absent for constant rates: earlier runs stay reusable
            : Array.Empty<object?>()).Select(x => Convert.ToString(x, CultureInfo.InvariantCulture)));
    }

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16].ToLowerInvariant();

    private static ComparisonRun? TryLoad(string file, string fingerprint)
    {
        if (!File.Exists(file)) return null;
        try
        {
            var run = JsonSerializer.Deserialize<ComparisonRun>(File.ReadAllText(file), Json);
            return run is { Measurements.Count: > 0 } && run.Fingerprint == fingerprint ? run : null;
        }
        catch (JsonException)
        {
            return null; // a damaged or foreign file: train the run again
        }
    }

    /// <summary>Up to <paramref name="count"/> images of a view as a tensor in [-1, 1], with their 0-based classes.</summary>
    private (Tensor Images, int[] Classes) ReadImages(IDataView view, int count, int? shuffleSeed)
    {
        var t = _options.Training;
        var source = shuffleSeed is { } s ? _ml.Data.ShuffleRows(view, seed: s) : view;
        var imageColumn = source.Schema[t.ImageColumnName];
        var columns = new List<DataViewSchema.Column> { imageColumn };
        DataViewSchema.Column? labelColumn = t.LabelColumnName is null ? null : source.Schema.GetColumnOrNull(t.LabelColumnName);
        if (labelColumn is { } lc) columns.Add(lc);
        if (imageColumn.Type is not VectorDataViewType { IsKnownSize: true, ItemType: NumberDataViewType } vector || vector.Dimensions.Length != 3)
            throw new ArgumentException($"Column '{t.ImageColumnName}' is {imageColumn.Type}; the comparison expects a float vector [C, H, W] (McDit's loaders give one).");
        using var cursor = source.GetRowCursor(columns);
        var getImage = cursor.GetGetter<VBuffer<float>>(imageColumn);
        ValueGetter<uint>? getLabel = labelColumn is { Type: KeyDataViewType } l ? cursor.GetGetter<uint>(l) : null;
        var pixels = new List<float>();
        var classes = new List<int>();
        VBuffer<float> buffer = default;
        uint key = 0;
        float lo = t.InputMinimum, hi = t.InputMaximum;
        while (classes.Count < count && cursor.MoveNext())
        {
            getImage(ref buffer);
            foreach (var x in buffer.DenseValues()) pixels.Add((x - lo) / (hi - lo) * 2 - 1);
            getLabel?.Invoke(ref key);
            classes.Add(getLabel is null ? 0 : (int)key - 1);
        }
        var dims = vector.Dimensions.Select(d => (long)d).Prepend(classes.Count).ToArray();
        return (torch.tensor(pixels.ToArray(), dims), classes.ToArray());
    }

    private static IReadOnlyList<string>? ClassNamesOf(IDataView view)
    {
        var label = view.Schema.GetColumnOrNull("Label");
        if (label is not { } l || !l.HasKeyValues()) return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        l.GetKeyValues(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToList();
    }
}
