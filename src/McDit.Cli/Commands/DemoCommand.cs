using System.CommandLine;
using System.Globalization;
using McDit.Cli.Runs;
using McDit.Torch.Training;
using Microsoft.ML;

namespace McDit.Cli.Commands;

/// <summary>
/// <c>mcdit demo</c>: the first thing to run. Trains a small MC-DiT on the embedded Fashion-MNIST subset on the CPU,
/// writes a labelled grid (one row per class) and the loss curve, and measures FD-ResNet18 against held-out images.
/// </summary>
public static class DemoCommand
{
    /// <summary>
    /// The demo's settings: about 10 minutes on two idle CPU cores, evaluation included. Chosen by the ablations in
    /// docs/results.md ("Demo ablations"): about 1,000 steps, most of them unmasking tuning (class accuracy 68 % at
    /// 600 + 150, 83 % at 760 + 190, 80.6–84 % at 475 + 475, 88.8 % at 320 + 700: on 49 tokens the unmasked steps are
    /// cheaper and teach the decoder what it sees when sampling), 12 Heun steps (as good as 18 at two thirds
    /// of the cost), guided only above σ = 0.28, and one grid at the end (a grid costs as much as ~35 training steps). A cosine decay, branch EMA 0.99
    /// and weight EMA 0.995 were worse. Training noise levels centred lower (ln σ ~ N(−0.8, 1.2²) instead of EDM's −1.2) and
    /// half of the training images rolled by 2 pixels, with a sampler that rolls every other evaluation by the same 2 pixels,
    /// move the 4×4 patch borders from one evaluation to the next: no visible patch grid; with guidance 4 (3 before the shift)
    /// every class of seed 0 recognised at 68 % or more ("Noise levels and the shift-trained sampler"; seed 1 drops Coat to 30 %).
    /// </summary>
    public static TrainSettings Settings => new()
    {
        // 320 masked MC-DiT steps, then 700 steps of unmasking tuning (mask ratio 0, learning rate halved).
        Data = "embedded", Model = "Tiny/4", Method = TrainingMethod.McDiT, Steps = 320, UnmaskSteps = 700, BatchSize = 32,
        LearningRate = 2e-3, EmaDecay = 0.99, SampleEvery = 0, CheckpointEvery = 250, SamplerSteps = 12, Guidance = 4.0,
        // Guidance only above σ = 0.28 (Kynkäänniemi et al. 2024): the last 8 of 23 evaluations unguided, 16 % less sampling
        // time at the same class accuracy (88.2 against 87.8 %; FD 307 against 295), docs/results.md.
        GuidanceSigmaMin = 0.28,
        // ln σ ~ N(−0.8, 1.2²): more of the training at the noise levels where a garment's shape is decided.
        PMean = -0.8,
        // Half of the training images rolled by 2 pixels (half a patch), so the sampler's every other evaluation, rolled the
        // same way, is in distribution and the patch borders do not stay in one place.
        TrainShift = 2, SamplerShift = 2,
        GridColumns = 10, Device = "auto",
    };

    /// <summary>Samples the demo's final evaluation generates: 50 per class of the 10 classes.</summary>
    public const int EvaluationSamples = 500;

    /// <summary>The masked (stage-1) share of <paramref name="total"/> demo steps: the default's 320 of 1,020, at least one.</summary>
    public static long MaskedSteps(long total)
    {
        var d = Settings;
        return Math.Clamp((long)Math.Round(total * (double)d.Steps / d.TotalSteps), 1, total);
    }

    /// <summary>
    /// Continues the demo run in <paramref name="folder"/> to <paramref name="total"/> steps in all: with the masked share
    /// of <see cref="MaskedSteps"/> while the run is still in stage 1 and has not passed that share; otherwise stage 1
    /// stays as it was trained and the unmasking tuning makes up the rest.
    /// </summary>
    /// <exception cref="ArgumentException">The run has already taken more than <paramref name="total"/> steps.</exception>
    internal static TrainingSession.Summary ResumeTo(TrainingSession session, RunFolder folder, long total, string device, CancellationToken cancel)
    {
        var saved = folder.LoadSettings();
        var state = folder.Checkpoints.Latest is { } latest ? Checkpoint.ReadState(latest) : null;
        long taken = state?.Step ?? 0, masked = MaskedSteps(total);
        if (taken > total)
            throw new ArgumentException(
                $"--steps {total} is too small: the demo run in '{folder.Path}' has already taken {taken} steps. Give --steps {taken} or more, or another --out.");
        if (state is { Stage: 2 } || taken > masked) masked = saved.Steps;
        if (masked > total)
            throw new ArgumentException(
                $"--steps {total} is too small: the demo run in '{folder.Path}' has {masked} masked steps before its unmasking tuning. Give --steps {masked + 1} or more, or another --out.");
        return session.Resume(folder, masked, device, cancel, unmaskSteps: total - masked);
    }

    /// <summary>
    /// Writes a grid with one row per class from generated samples: the first <paramref name="columns"/> of each class (fewer when
    /// a class has fewer), in the order they were generated.
    /// </summary>
    /// <param name="images">Generated images [N, C, H, W] in [-1, 1].</param>
    /// <param name="classes">The class of each image, or null for an unconditional model (one row).</param>
    /// <param name="numberOfClasses">Rows of the grid.</param>
    /// <param name="classNames">Row labels; the class index where null or missing.</param>
    /// <param name="columns">Images per row at most.</param>
    /// <param name="path">The PNG to write (atomically).</param>
    public static void SaveGrid(TorchSharp.torch.Tensor images, IReadOnlyList<int>? classes, int numberOfClasses, IReadOnlyList<string>? classNames, int columns, string path)
    {
        int rows = classes is null ? 1 : Math.Max(1, numberOfClasses);
        var picked = Enumerable.Range(0, rows)
            .Select(c => Enumerable.Range(0, (int)images.shape[0]).Where(i => classes is null || classes[i] == c).Take(columns).ToArray())
            .ToArray();
        columns = Math.Max(1, picked.Min(p => p.Length));
        var order = picked.SelectMany(p => p.Take(columns)).Select(i => (long)i).ToArray();
        if (order.Length == 0) return;
        using var scope = TorchSharp.torch.NewDisposeScope();
        var grid = images.index_select(0, TorchSharp.torch.tensor(order, device: images.device)).cpu();
        var labels = classes is null ? null : Enumerable.Range(0, rows)
            .Select(c => classNames is { } names && c < names.Count ? names[c] : c.ToString(CultureInfo.InvariantCulture)).ToList();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        McDit.MLNet.Imaging.ImageGrid.SavePng(grid, columns, path, scale: 2, labels);
    }

    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var defaults = Settings;
        var outDir = new Option<string>("--out") { Description = "Run folder.", DefaultValueFactory = _ => "runs/demo" }.OutputFolder("a run folder");
        var steps = new Option<long>("--steps") { Description = "Training steps in all, 32 of every 102 masked MC-DiT pre-training and the rest unmasking tuning, as in the default 320 + 700 (shorten for a quick look; lengthen for better images).", DefaultValueFactory = _ => defaults.TotalSteps }.InRange(1, int.MaxValue, "training steps");
        var fdSamples = new Option<int>("--fd-samples") { Description = "Generated images for FD-ResNet18 and class accuracy, classes in turn (0 skips the measurement).", DefaultValueFactory = _ => EvaluationSamples }.InRange(0, OptionChecks.MaxFdSamples, "generated images (0 skips FD)");
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => defaults.Device }.Device();
        var command = new Command("demo",
            "Train a small MC-DiT on the embedded Fashion-MNIST images, write a labelled sample grid and loss curve, and measure FD-ResNet18.")
        {
            outDir, steps, fdSamples, device,
        };
        command.SetAction(parse =>
        {
            var folder = new RunFolder(parse.GetValue(outDir)!);
            long total = parse.GetValue(steps), masked = MaskedSteps(total);
            var settings = Settings with { Steps = masked, UnmaskSteps = total - masked, Device = parse.GetValue(device)! };
            using var interruption = new Interruption();
            int n = parse.GetValue(fdSamples);
            bool evaluate = n >= 2;
            // With the evaluation, final.png is drawn from its samples (the first of each class) instead of sampling a grid of its own.
            var session = new TrainingSession(output, interactive: ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected, error)
            {
                WriteFinalGrid = !evaluate,
            };
            var summary = folder.HasRun
                ? ResumeTo(session, folder, total, settings.Device, interruption.Token)
                : session.Start(folder, settings, interruption.Token);
            TrainCommand.PrintSummary(output, folder, summary);
            if (summary.Interrupted) return CliErrors.Interrupted;

            if (evaluate)
            {
                var ml = new MLContext(seed: 0);
                var generator = ModelSource.Load(ml, folder.Path, settings.Device, out _);
                // 500 of the 1,000 held-out images keep the one-off featurisation short; the statistics are cached.
                const int referenceImages = 500;
                var referenceName = $"embedded (held-out, {referenceImages})";
                output.WriteLine();
                using var fd = new FdEvaluation(ml, ml.Data.TakeRows(DataSources.Load(ml, "embedded", heldOut: true), referenceImages), referenceName,
                    FdEvaluation.DefaultCacheFile(referenceName), output, classifierTraining: DataSources.Load(ml, "embedded", heldOut: false));
                var grid = Path.Combine(folder.SamplesFolder, "final.png");
                var result = fd.Evaluate(generator, n, seed: 0, (images, classes) => SaveGrid(images, classes, generator.NumberOfClasses, generator.ClassNames, defaults.GridColumns, grid));
                FdEvaluation.Append(folder.EvaluationsFile, result);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  FD-ResNet18  {result.FrechetDistance:F2}  ({result.Samples} generated vs {result.ReferenceCount} held-out real images; lower is better)"));
                EvaluateCommand.PrintAccuracy(output, result);
            }
            output.WriteLine($"  Look at {Path.Combine(folder.SamplesFolder, "final.png")}: one row per class.");
            return 0;
        });
        return command;
    }
}
