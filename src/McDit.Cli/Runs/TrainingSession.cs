using System.Diagnostics;
using System.Globalization;
using McDit.MLNet.Imaging;
using McDit.Torch.Data;
using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Cli.Runs;

/// <summary>
/// One training run in a run folder: starts or resumes, feeds batches by (epoch, index) so a resumed run is exact,
/// switches to unmasking tuning after the masked steps, writes metrics, checkpoints and sample grids, and stops
/// cleanly (with a checkpoint) when cancelled.
/// </summary>
public sealed class TrainingSession
{
    private readonly TextWriter _out;
    private readonly bool _interactive;

    /// <summary>Creates a session that reports to <paramref name="output"/>.</summary>
    public TrainingSession(TextWriter output, bool interactive)
    {
        _out = output;
        _interactive = interactive;
    }

    /// <summary>What a finished (or interrupted) run reports.</summary>
    public sealed record Summary(long Steps, bool Interrupted, double FinalLoss, double StepsPerSecond, string Checkpoint, string? SampleGrid);

    /// <summary>Starts a new run in <paramref name="folder"/>.</summary>
    public Summary Start(RunFolder folder, TrainSettings settings, CancellationToken cancel)
    {
        settings = settings.Validated();
        if (folder.HasRun)
            throw new InvalidOperationException($"'{folder.Path}' already holds a run. Continue it with --resume, or choose another --out.");
        var data = DataSources.LoadTraining(settings.Data);
        var (size, patch) = DiffusionTransformerConfig.ParseName(settings.Model);
        int padding = DataSources.PaddingFor(data, patch);
        var backbone = DiffusionTransformerConfig.Preset(size, patch, data.Height + 2 * padding, data.Channels, data.ClassCount);
        var method = MethodOptions.For(settings.Method);
        if (settings.MaskRatio is { } r) method = method with { MaskRatio = r };
        var options = new TrainerOptions
        {
            Method = method, LearningRate = settings.LearningRate, EmaDecay = settings.EmaDecay, GradClipNorm = settings.GradClip,
            Seed = settings.Seed, Device = settings.Device, Precision = settings.Precision,
        };
        folder.SaveSettings(settings);
        using var trainer = new DiffusionTrainer(backbone, options);
        return Run(folder, settings, trainer, data, padding, cancel);
    }

    /// <summary>Continues the run in <paramref name="folder"/> from its latest checkpoint; <paramref name="steps"/> can extend stage 1.</summary>
    public Summary Resume(RunFolder folder, long? steps, string? device, CancellationToken cancel)
    {
        var settings = folder.LoadSettings();
        if (steps is { } s) settings = settings with { Steps = s };
        if (device is not null) settings = settings with { Device = device };
        settings = settings.Validated();
        var latest = folder.LatestCheckpoint
            ?? throw new InvalidOperationException($"'{folder.Path}' has no checkpoint yet; start it again without --resume (delete the folder first).");
        var data = DataSources.LoadTraining(settings.Data);
        var (_, patch) = DiffusionTransformerConfig.ParseName(settings.Model);
        int padding = DataSources.PaddingFor(data, patch);
        folder.SaveSettings(settings);
        using var trainer = Checkpoint.Load(latest, device);
        _out.WriteLine($"Resuming {folder.Path} from {Path.GetFileName(latest)} (step {trainer.State.Step}).");
        return Run(folder, settings, trainer, data, padding, cancel);
    }

    private Summary Run(RunFolder folder, TrainSettings settings, DiffusionTrainer trainer, LabeledImageSet data, int padding, CancellationToken cancel)
    {
        var feeder = new EpochBatches(data, settings.BatchSize, settings.Seed, padding);
        var state = trainer.State;
        _out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{settings.Method} {settings.Model}: {trainer.Model.ParameterCount(true):N0} trainable parameters, {data.Count:N0} images " +
            $"{data.Channels}×{data.Height + 2 * padding}×{data.Width + 2 * padding}, batch {settings.BatchSize}, {settings.TotalSteps} steps " +
            $"({settings.Steps} masked + {settings.UnmaskSteps} unmasking), device {trainer.Device}"));
        using var metrics = new MetricsLog(folder.MetricsFile, state.Step);
        var progress = new ProgressLine(_out, settings.TotalSteps, state.Step, _interactive);
        var clock = Stopwatch.StartNew();
        string? grid = null;
        bool interrupted = false;
        while (state.Step < settings.TotalSteps)
        {
            if (cancel.IsCancellationRequested) { interrupted = true; break; }
            if (state.Step >= settings.Steps && state.Stage == 1 && settings.UnmaskSteps > 0) trainer.StartUnmaskTuning();
            LossBreakdown loss;
            {
                var (images, labels) = feeder.Batch(state.Epoch, state.BatchInEpoch);
                using (images) using (labels) loss = trainer.Step(images, labels);
            }
            if (++state.BatchInEpoch == feeder.BatchesPerEpoch) { state.Epoch++; state.BatchInEpoch = 0; }
            metrics.Add(trainer, loss, clock.Elapsed.TotalSeconds);
            progress.Report(state.Step, loss.Total);
            bool last = state.Step == settings.TotalSteps;
            if (!last && settings.CheckpointEvery > 0 && state.Step % settings.CheckpointEvery == 0) folder.SaveCheckpoint(trainer);
            if (!last && settings.SampleEvery > 0 && state.Step % settings.SampleEvery == 0)
                grid = WriteGrid(trainer, data, settings, folder.SamplesFor(state.Step), progress);
        }
        progress.Break();
        var checkpoint = folder.SaveCheckpoint(trainer);
        if (interrupted)
        {
            _out.WriteLine($"Interrupted at step {state.Step}: checkpoint written to {checkpoint}. Continue with: mcdit train --resume --out {folder.Path}");
        }
        else
        {
            grid = WriteGrid(trainer, data, settings, Path.Combine(folder.SamplesFolder, "final.png"), null);
            LossCurve.Save(MetricsLog.ReadAll(folder.MetricsFile), folder.LossCurveFile, $"{settings.Method} {settings.Model}");
        }
        return new Summary(state.Step, interrupted, state.LastLoss, progress.StepsPerSecond(state.Step), checkpoint, grid);
    }

    /// <summary>Writes a grid with one row per class (class name on the left) from the weight EMA.</summary>
    public static string WriteGrid(DiffusionTrainer trainer, LabeledImageSet data, TrainSettings settings, string path, ProgressLine? progress)
    {
        var labels = Enumerable.Range(0, data.ClassCount).SelectMany(c => Enumerable.Repeat(c, settings.GridColumns)).ToArray();
        var sampler = new SamplerOptions { Steps = settings.SamplerSteps, Solver = settings.Solver, GuidanceScale = settings.Guidance };
        using var scope = NewDisposeScope();
        var samples = trainer.Generate(labels, labels.Length, settings.Seed, sampler);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageGrid.SavePng(samples.clamp(-1, 1), settings.GridColumns, path, scale: 2, rowLabels: data.ClassNames);
        return path;
    }
}
