using System.Globalization;
using McDit.MLNet.Data;
using McDit.MLNet.Generation;
using McDit.MLNet.Imaging;
using McDit.MLNet.Trainers;
using McDit.Torch.Diffusion;
using McDit.Torch.Distributed;
using McDit.Torch.Runtime;
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
    private readonly TextWriter _errors;
    private readonly bool _interactive;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    /// <summary>How this process joins a data-parallel job (default: from the launcher's environment). Only rank 0 writes the run folder and reports.</summary>
    public DistributedOptions Distributed { get; init; } = new();

    /// <summary>True on rank 0 of a data-parallel job (and for a process training alone): the one that writes and reports.</summary>
    public bool IsMain => Distributed.ResolveWorld().IsMain;
    private TextWriter Out => IsMain ? _console : TextWriter.Null;
    private TextWriter Error => IsMain ? _errors : TextWriter.Null;

    /// <summary>Creates a session that reports to <paramref name="output"/> (warnings to <paramref name="error"/>, default: the same).</summary>
    public TrainingSession(TextWriter output, bool interactive, TextWriter? error = null)
    {
        _console = output;
        _errors = error ?? output;
        _interactive = interactive;
    }

    /// <summary>
    /// A pause after every step, for tests that interrupt a run at a chosen step (the environment variable
    /// <c>MCDIT_TEST_STEP_DELAY_MS</c> sets it for <c>mcdit train</c>); zero otherwise.
    /// </summary>
    public TimeSpan StepDelay { get; init; }

    /// <summary>
    /// A step after which the run waits (up to a minute) until it is interrupted, so that a test's signal lands exactly
    /// there however loaded the machine is (the environment variable <c>MCDIT_TEST_PAUSE_AT_STEP</c> sets it for
    /// <c>mcdit train</c>); null otherwise.
    /// </summary>
    public long? PauseAtStep { get; init; }

    /// <summary>
    /// Whether a finished run samples its own final grid (samples/final.png). <c>mcdit demo</c> turns it off and draws the grid
    /// from the samples its evaluation generates anyway, which saves a second round of sampling.
    /// </summary>
    public bool WriteFinalGrid { get; init; } = true;

    /// <summary>What a finished (or interrupted) run reports.</summary>
    public sealed record Summary(long Steps, bool Interrupted, double FinalLoss, double StepsPerSecond, string? Checkpoint, string? Model, string? SampleGrid);

    /// <summary>Starts a new run in <paramref name="folder"/>.</summary>
    /// <exception cref="ArgumentException">A setting is invalid, or the folder already holds a run.</exception>
    public Summary Start(RunFolder folder, TrainSettings settings, CancellationToken cancel)
    {
        settings = settings.Validated();
        // Rank 0 checks and writes the folder; the other ranks would see its run.json.
        if (IsMain && folder.HasRun)
            throw new ArgumentException($"--out '{folder.Path}' already holds a run. Continue it with --resume, or choose another --out.");
        TorchBackend.ResolveDevice(settings.Device);
        var ml = new MLContext(seed: unchecked((int)settings.Seed));
        var data = LoadTraining(ml, settings);
        if (IsMain) folder.SaveSettings(settings);
        return Run(ml, folder, settings, data, resume: false, cancel);
    }

    /// <summary>
    /// Continues the run in <paramref name="folder"/> from its newest intact checkpoint (damaged ones are reported and
    /// skipped); <paramref name="steps"/> can extend stage 1 while the run is in it, <paramref name="unmaskSteps"/> the
    /// unmasking tuning at any time. Resuming a finished run with the same lengths changes nothing.
    /// </summary>
    /// <exception cref="ArgumentException">An override is invalid for this run.</exception>
    /// <exception cref="InvalidDataException">run.json is damaged, or every checkpoint is.</exception>
    public Summary Resume(RunFolder folder, long? steps, string? device, CancellationToken cancel, long? unmaskSteps = null)
    {
        var saved = folder.LoadSettings();
        var settings = saved;
        if (steps is { } s) settings = settings with { Steps = s };
        if (unmaskSteps is { } u) settings = settings with { UnmaskSteps = u };
        if (device is not null) settings = settings with { Device = device };
        settings = settings.Validated();
        TorchBackend.ResolveDevice(settings.Device);
        var (latest, damaged) = folder.Checkpoints.FindLatest();
        foreach (var d in damaged) Warn(d);
        if (latest is null && damaged.Count > 0)
            throw new InvalidDataException(
                $"'{folder.Path}' has no intact checkpoint: all {damaged.Count} are damaged (the newest: {damaged[0].Problem}). " +
                "Delete the damaged checkpoint folders to start the run over.");
        if (latest is null)
        {
            // Stopped before its first checkpoint: nothing is lost by starting over, with the run's own settings.
            if (IsMain)
            {
                folder.RemoveStaleFiles();
                new MetricsLog(folder.MetricsFile, keepUpToStep: 0).Dispose();
            }
            Out.WriteLine($"{folder.Path} has no checkpoint yet (it stopped before the first one): starting it over from step 0.");
            var fresh = new MLContext(seed: unchecked((int)settings.Seed));
            var freshData = LoadTraining(fresh, settings);
            if (IsMain && settings != saved) folder.SaveSettings(settings);
            return Run(fresh, folder, settings, freshData, resume: false, cancel);
        }
        var state = Checkpoint.ReadState(latest);
        if (state.Stage == 2 && settings.Steps != saved.Steps)
            throw new ArgumentException(
                $"--steps cannot change: the run is in unmasking tuning since step {saved.Steps} (checkpoint {latest}). " +
                "Resume without --steps; --unmask-steps can still extend the unmasking tuning.");
        if (state.Step > settings.TotalSteps)
            throw new ArgumentException(state.Stage == 2
                ? $"--unmask-steps {settings.UnmaskSteps} is too small: the run has already taken {state.Step - settings.Steps} unmasking steps (its last checkpoint is {latest}); give --unmask-steps {state.Step - settings.Steps} or more."
                : $"--steps {settings.Steps} is too small: the run has already taken {state.Step} steps (its last checkpoint is {latest}); give --steps {state.Step - settings.UnmaskSteps} or more.");
        if (state.Step == settings.TotalSteps && IsFinished(folder, state.Step))
        {
            Out.WriteLine($"{folder.Path} is finished: {state.Step} of {settings.TotalSteps} steps, model in {folder.ModelFile}. Nothing to do; extend it with --steps.");
            return new Summary(state.Step, false, state.LastLoss, 0, latest, folder.ModelFile,
                File.Exists(Path.Combine(folder.SamplesFolder, "final.png")) ? Path.Combine(folder.SamplesFolder, "final.png") : null);
        }
        if (IsMain) folder.RemoveStaleFiles();
        var ml = new MLContext(seed: unchecked((int)settings.Seed));
        var data = LoadTraining(ml, settings);
        if (IsMain && settings != saved) folder.SaveSettings(settings);
        return Run(ml, folder, settings, data, resume: true, cancel);
    }

    /// <summary>True when model.zip is intact and holds the model of <paramref name="step"/> steps.</summary>
    private static bool IsFinished(RunFolder folder, long step)
    {
        if (!File.Exists(folder.ModelFile)) return false;
        try
        {
            return McDitModelFile.LoadGenerator(new MLContext(), folder.ModelFile, "cpu").TrainedSteps == step;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
        {
            return false; // rewritten from the final checkpoint
        }
    }

    private void Warn(CheckpointSeries.Damaged d)
    {
        if (_reported.Add(d.Folder))
            Error.WriteLine($"mcdit: warning: skipping damaged checkpoint {d.Folder}: {CliErrors.OneLine(d.Problem)}");
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
        var threads = McDit.Torch.Runtime.TorchThreadPolicy.Current is { } t
            ? $", {t.Threads} CPU thread{(t.Threads == 1 ? "" : "s")} ({t.Reason})" : "";
        if (McDit.Torch.Runtime.TorchThreadPolicy.Current is { Threads: >= 2 } split && McDit.Torch.Runtime.BatchHalves.Enabled
            && McDit.Torch.Runtime.TorchBackend.ResolveDevice(settings.Device).type == TorchSharp.DeviceType.CPU)
            threads += $", each batch in two halves at once ({split.Threads / 2} thread{(split.Threads / 2 == 1 ? "" : "s")} each; MCDIT_BATCH_HALVES=0: whole)";
        Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{settings.Method} {settings.Model} on {settings.Data}: {data.Count:N0} images {data.Channels}×{data.Height}×{data.Width}, " +
            $"{data.ClassNames.Count} classes, batch {settings.BatchSize}, {settings.TotalSteps} steps ({settings.Steps} masked + {settings.UnmaskSteps} unmasking), device {settings.Device}{threads}"));
        if (McDit.Torch.Runtime.TorchBackend.MklDispatchReport is { } mkl) Out.WriteLine("  " + mkl);
        // The log and the progress line start where training starts: a resumed run learns its step from the trainer.
        long startStep = 0;
        MetricsLog? metrics = null;
        ProgressLine? progress = null;
        bool isMain = IsMain;
        void Begin(long step)
        {
            startStep = step;
            if (isMain) metrics ??= new MetricsLog(folder.MetricsFile, step); // only rank 0 writes the run folder
            progress ??= new ProgressLine(Out, settings.TotalSteps, step, _interactive);
        }
        if (!resume) Begin(0);
        string? grid = null;
        // Periodic FD compares with the held-out split; latent models' samples would need decoding first.
        using var fd = isMain && settings.FdEvery > 0 && settings.Vae is null
            ? new FdEvaluation(ml, DataSources.Load(ml, settings.Data, heldOut: true), $"{settings.Data} (held-out)",
                FdEvaluation.DefaultCacheFile($"{settings.Data} (held-out)"), Out, classifierTraining: data)
            : null;
        var sampler = settings.ToSamplerOptions();

        var options = settings.ToTrainerOptions();
        options.CheckpointFolder = folder.Checkpoints.Folder;
        options.CheckpointInterval = (int)Math.Min(int.MaxValue, settings.CheckpointEvery);
        options.ResumeFromCheckpoint = resume;
        options.CancellationToken = cancel;
        options.Distributed = Distributed;
        options.LoggingInterval = int.MaxValue; // the progress line reports instead
        options.DamagedCheckpointCallback = Warn;
        options.ResumeCallback = (checkpoint, step) =>
        {
            Begin(step);
            Out.WriteLine($"Resuming {folder.Path} from {Path.GetFileName(checkpoint)} (step {step}).");
        };
        options.StepCallback = step =>
        {
            if (progress is null) Begin(0); // resuming found no checkpoint at all: a fresh start
            metrics?.Add(step); // the trainer calls back on rank 0 only
            progress!.Report(step.Step, step.Loss.Total);
            if (StepDelay > TimeSpan.Zero) Thread.Sleep(StepDelay);
            if (step.Step == PauseAtStep) cancel.WaitHandle.WaitOne(TimeSpan.FromMinutes(1));
            // Intermediate grids show pixel-space samples; a latent run's grid is decoded once, at the end.
            if (settings.Vae is null && settings.SampleEvery > 0 && step.Step % settings.SampleEvery == 0 && step.Step < step.TotalSteps)
                grid = WriteGrid(step, settings, sampler, folder.SamplesFor(step.Step));
            if (fd is not null && step.Step % settings.FdEvery == 0)
            {
                progress.Break();
                using var scope = NewDisposeScope();
                var classes = FdEvaluation.BalancedClasses(settings.FdSamples, step.NumberOfClasses);
                var samples = step.Generate(classes, settings.FdSamples, settings.Seed, sampler);
                var result = fd.Measure(samples, step.Step, settings.Seed, sampler.Steps, sampler.GuidanceScale, classes: classes);
                FdEvaluation.Append(folder.EvaluationsFile, result);
                var accuracy = FdEvaluation.DescribeAccuracy(result);
                Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step.Step}: FD-ResNet18 {result.FrechetDistance:F2} ({result.Samples} samples){(accuracy is null ? "" : ", " + accuracy)}"));
            }
        };

        try
        {
            McDitModel model;
            try
            {
                model = ml.McDit().Trainers.DiffusionTransformer(options).Fit(training);
            }
            catch (OperationCanceledException)
            {
                progress?.Break();
                var latest = folder.Checkpoints.Latest;
                Out.WriteLine($"Interrupted: checkpoint written to {latest}. Continue with: mcdit train --resume --out {folder.Path}");
                var last = MetricsLog.ReadAll(folder.MetricsFile).LastOrDefault();
                return new Summary(last?.Step ?? startStep, true, last?.Loss ?? double.NaN, progress?.StepsPerSecond(last?.Step ?? startStep) ?? 0, latest, null, grid);
            }
            progress?.Break();
            if (!isMain) return new Summary(model.TrainedSteps, false, model.FinalLoss, progress?.StepsPerSecond(model.TrainedSteps) ?? 0, null, null, null);
            // Deterministic and atomic: an interrupted and resumed run writes the same bytes as one that never stopped.
            McDitModelFile.Save(ml, model, training.Schema, folder.ModelFile);
            grid = null;
            if (WriteFinalGrid)
            {
                grid = Path.Combine(folder.SamplesFolder, "final.png");
                Directory.CreateDirectory(folder.SamplesFolder);
                model.SaveImageGrid(grid, settings.GridColumns, settings.Seed, scale: 2);
            }
            LossCurve.Save(MetricsLog.ReadAll(folder.MetricsFile), folder.LossCurveFile, $"{settings.Method} {settings.Model}");
            return new Summary(model.TrainedSteps, false, model.FinalLoss, progress?.StepsPerSecond(model.TrainedSteps) ?? 0,
                folder.Checkpoints.Latest, folder.ModelFile, grid);
        }
        finally
        {
            metrics?.Dispose();
        }
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
