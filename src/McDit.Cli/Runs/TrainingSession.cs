using System.Globalization;
using McDit.MLNet.Data;
using McDit.MLNet.Generation;
using McDit.MLNet.Imaging;
using McDit.MLNet.Trainers;
using McDit.Torch.Diffusion;
using McDit.Torch.Distributed;
using McDit.Torch.Training;
using Microsoft.ML;
using static TorchSharp.torch;

namespace McDit.Cli.Runs;

/// <summary>
/// One training run in a run folder, through McDit's ML.NET trainer: starts or resumes (exactly, from the latest
/// checkpoint), writes metrics, progress, checkpoints and sample grids as it goes, and the trained ML.NET model
/// (model.zip), a final grid and the loss curve at the end. Cancelled runs keep a checkpoint.
/// </summary>
public sealed class TrainingSession
{
    private readonly TextWriter _console;
    private readonly bool _interactive;

    /// <summary>How this process joins a data-parallel job (default: from the launcher's environment). Only rank 0 writes the run folder and reports.</summary>
    public DistributedOptions Distributed { get; init; } = new();

    /// <summary>True on rank 0 of a data-parallel job (and for a process training alone): the one that writes and reports.</summary>
    public bool IsMain => Distributed.ResolveWorld().IsMain;
    private TextWriter Out => IsMain ? _console : TextWriter.Null;

    /// <summary>Creates a session that reports to <paramref name="output"/>.</summary>
    public TrainingSession(TextWriter output, bool interactive)
    {
        _console = output;
        _interactive = interactive;
    }

    /// <summary>What a finished (or interrupted) run reports.</summary>
    public sealed record Summary(long Steps, bool Interrupted, double FinalLoss, double StepsPerSecond, string? Checkpoint, string? Model, string? SampleGrid);

    /// <summary>Starts a new run in <paramref name="folder"/>.</summary>
    public Summary Start(RunFolder folder, TrainSettings settings, CancellationToken cancel)
    {
        settings = settings.Validated();
        // Rank 0 checks and writes the folder; the other ranks would see its run.json.
        if (IsMain && folder.HasRun)
            throw new InvalidOperationException($"'{folder.Path}' already holds a run. Continue it with --resume, or choose another --out.");
        var ml = new MLContext(seed: unchecked((int)settings.Seed));
        var data = LoadTraining(ml, settings);
        if (IsMain) folder.SaveSettings(settings);
        return Run(ml, folder, settings, data, resume: false, cancel);
    }

    /// <summary>Continues the run in <paramref name="folder"/> from its latest checkpoint; <paramref name="steps"/> can extend stage 1.</summary>
    public Summary Resume(RunFolder folder, long? steps, string? device, CancellationToken cancel)
    {
        var settings = folder.LoadSettings();
        if (steps is { } s) settings = settings with { Steps = s };
        if (device is not null) settings = settings with { Device = device };
        settings = settings.Validated();
        var latest = folder.Checkpoints.Latest
            ?? throw new InvalidOperationException($"'{folder.Path}' has no checkpoint yet; start it again without --resume (delete the folder first).");
        var ml = new MLContext(seed: unchecked((int)settings.Seed));
        var data = LoadTraining(ml, settings);
        if (IsMain) folder.SaveSettings(settings);
        Out.WriteLine($"Resuming {folder.Path} from {Path.GetFileName(latest)}.");
        return Run(ml, folder, settings, data, resume: true, cancel);
    }

    /// <summary>The training view: the loader's, passed through the VAE's latent encoder when --vae is given.</summary>
    private static (LabeledImageDataView Images, IDataView Training) LoadTraining(MLContext ml, TrainSettings settings)
    {
        var images = DataSources.Load(ml, settings.Data, heldOut: false,
            new McDit.MLNet.Data.ImageFolderOptions { ImageSize = settings.ImageSize, Channels = 3 });
        if (settings.Vae is null) return (images, images);
        if (images.Channels != 3)
            throw new InvalidOperationException($"--vae needs RGB images; --data '{settings.Data}' has {images.Channels} channel(s).");
        var encoder = ml.McDit().Transforms.EncodeLatents("Latent", "Image", settings.Vae).Fit(images);
        return (images, encoder.Transform(images));
    }

    private Summary Run(MLContext ml, RunFolder folder, TrainSettings settings, (LabeledImageDataView Images, IDataView Training) views, bool resume, CancellationToken cancel)
    {
        var (data, training) = views;
        long startStep = resume ? Checkpoint.ReadState(folder.Checkpoints.Latest!).Step : 0;
        Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{settings.Method} {settings.Model} on {settings.Data}: {data.Count:N0} images {data.Channels}×{data.Height}×{data.Width}, " +
            $"{data.ClassNames.Count} classes, batch {settings.BatchSize}, {settings.TotalSteps} steps ({settings.Steps} masked + {settings.UnmaskSteps} unmasking), device {settings.Device}"));
        bool isMain = IsMain;
        using var metrics = isMain ? new MetricsLog(folder.MetricsFile, startStep) : null;
        var progress = new ProgressLine(Out, settings.TotalSteps, startStep, _interactive);
        string? grid = null;
        // Periodic FD compares with the held-out split; latent models' samples would need decoding first.
        using var fd = isMain && settings.FdEvery > 0 && settings.Vae is null
            ? new FdEvaluation(ml, DataSources.Load(ml, settings.Data, heldOut: true), $"{settings.Data} (held-out)",
                FdEvaluation.DefaultCacheFile($"{settings.Data} (held-out)"), Out)
            : null;
        var sampler = new SamplerOptions { Steps = settings.SamplerSteps, Solver = settings.Solver, GuidanceScale = settings.Guidance };

        var options = settings.ToTrainerOptions();
        options.CheckpointFolder = folder.Checkpoints.Folder;
        options.CheckpointInterval = (int)Math.Min(int.MaxValue, settings.CheckpointEvery);
        options.ResumeFromCheckpoint = resume;
        options.CancellationToken = cancel;
        options.Distributed = Distributed;
        options.LoggingInterval = int.MaxValue; // the progress line reports instead
        options.StepCallback = step =>
        {
            metrics?.Add(step); // the trainer calls back on rank 0 only
            progress.Report(step.Step, step.Loss.Total);
            // Intermediate grids show pixel-space samples; a latent run's grid is decoded once, at the end.
            if (settings.Vae is null && settings.SampleEvery > 0 && step.Step % settings.SampleEvery == 0 && step.Step < step.TotalSteps)
                grid = WriteGrid(step, settings, sampler, folder.SamplesFor(step.Step));
            if (fd is not null && step.Step % settings.FdEvery == 0)
            {
                progress.Break();
                using var scope = NewDisposeScope();
                var samples = step.Generate(FdEvaluation.BalancedClasses(settings.FdSamples, step.NumberOfClasses), settings.FdSamples, settings.Seed, sampler);
                var result = fd.Measure(samples, step.Step, settings.Seed, sampler.Steps, sampler.GuidanceScale);
                FdEvaluation.Append(folder.EvaluationsFile, result);
                Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step.Step}: FD-ResNet18 {result.FrechetDistance:F2} ({result.Samples} samples)"));
            }
        };

        McDitModel model;
        try
        {
            model = ml.McDit().Trainers.DiffusionTransformer(options).Fit(training);
        }
        catch (OperationCanceledException)
        {
            progress.Break();
            var latest = folder.Checkpoints.Latest;
            Out.WriteLine($"Interrupted: checkpoint written to {latest}. Continue with: mcdit train --resume --out {folder.Path}");
            var last = MetricsLog.ReadAll(folder.MetricsFile).LastOrDefault();
            return new Summary(last?.Step ?? startStep, true, last?.Loss ?? double.NaN, progress.StepsPerSecond(last?.Step ?? startStep), latest, null, grid);
        }
        progress.Break();
        if (!isMain) return new Summary(model.TrainedSteps, false, model.FinalLoss, progress.StepsPerSecond(model.TrainedSteps), null, null, null);
        ml.Model.Save(model, training.Schema, folder.ModelFile);
        grid = Path.Combine(folder.SamplesFolder, "final.png");
        Directory.CreateDirectory(folder.SamplesFolder);
        model.SaveImageGrid(grid, settings.GridColumns, settings.Seed, scale: 2);
        LossCurve.Save(MetricsLog.ReadAll(folder.MetricsFile), folder.LossCurveFile, $"{settings.Method} {settings.Model}");
        return new Summary(model.TrainedSteps, false, model.FinalLoss, progress.StepsPerSecond(model.TrainedSteps),
            folder.Checkpoints.Latest, folder.ModelFile, grid);
    }

    /// <summary>A grid with one row per class (named on the left) from the current weight EMA.</summary>
    private static string WriteGrid(McDitTrainingStep step, TrainSettings settings, SamplerOptions sampler, string path)
    {
        int rows = Math.Max(1, step.NumberOfClasses);
        var labels = step.NumberOfClasses == 0 ? null : Enumerable.Range(0, rows).SelectMany(c => Enumerable.Repeat(c, settings.GridColumns)).ToArray();
        using var scope = NewDisposeScope();
        var samples = step.Generate(labels, rows * settings.GridColumns, settings.Seed, sampler);
        var names = step.NumberOfClasses == 0 ? null
            : Enumerable.Range(0, rows).Select(c => step.ClassNames is { } n && c < n.Count ? n[c] : c.ToString(CultureInfo.InvariantCulture)).ToList();
        ImageGrid.SavePng(samples, settings.GridColumns, path, scale: 2, rowLabels: names);
        return path;
    }
}
