using McDit.Cli.Runs;
using SixLabors.ImageSharp;
using Xunit;

namespace McDit.Cli.Tests;

/// <summary>Tiny real runs on the embedded data (Tiny/4, batch 4, a few steps).</summary>
public sealed class RunFolderTests : IDisposable
{
    readonly List<string> _folders = new();

    string Folder()
    {
        var f = CliRunner.TempFolder();
        _folders.Add(f);
        return f;
    }

    static string[] Tiny(string folder, params string[] extra) => new[]
    {
        "train", "--out", folder, "--batch-size", "4", "--sampler-steps", "1", "--grid-columns", "1", "--device", "cpu",
        "--sample-every", "0", "--checkpoint-every", "1",
    }.Concat(extra).ToArray();

    [Fact]
    public void ATinyRunWritesEveryFileOfARunFolder()
    {
        var folder = Folder();
        var (exit, output, error) = CliRunner.Run(Tiny(folder, "--steps", "2"));
        Assert.True(exit == 0, error);
        var run = new RunFolder(folder);
        Assert.True(File.Exists(run.SettingsFile));
        Assert.Equal(2, MetricsLog.ReadAll(run.MetricsFile).Count);
        Assert.EndsWith("step-0000002", run.Checkpoints.Latest);
        foreach (var f in new[] { "config.json", "model.safetensors", "ema.safetensors", "optimizer.safetensors", "branches.safetensors", "state.json" })
            Assert.True(File.Exists(Path.Combine(run.Checkpoints.Latest!, f)), f);
        using (var grid = Image.Load(Path.Combine(run.SamplesFolder, "final.png")))
            Assert.True(grid.Height >= 10 * 56, "one row per class"); // 10 rows of 28 px at scale 2
        Assert.True(File.Exists(run.ModelFile), "the ML.NET model");
        Assert.True(File.Exists(run.LossCurveFile));
        Assert.Contains("steps", output);
        Assert.Contains("checkpoint", output);
    }

    [Fact]
    public void ResumingContinuesExactlyAsAnUninterruptedRun()
    {
        var straight = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(straight, "--steps", "4", "--method", "MaskDiT")).Exit);
        var split = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(split, "--steps", "2", "--method", "MaskDiT")).Exit);
        var (exit, output, error) = CliRunner.Run("train", "--resume", "--out", split, "--steps", "4");
        Assert.True(exit == 0, error);
        Assert.Contains("Resuming", output);
        var a = new RunFolder(straight).Checkpoints.Latest!;
        var b = new RunFolder(split).Checkpoints.Latest!;
        foreach (var f in new[] { "model.safetensors", "ema.safetensors", "optimizer.safetensors" })
            Assert.True(File.ReadAllBytes(Path.Combine(a, f)).SequenceEqual(File.ReadAllBytes(Path.Combine(b, f))), $"{f} differs after resume");
        var la = MetricsLog.ReadAll(new RunFolder(straight).MetricsFile).Select(e => e.Loss);
        var lb = MetricsLog.ReadAll(new RunFolder(split).MetricsFile).Select(e => e.Loss);
        Assert.Equal(la, lb);
    }

    [Fact]
    public void AFinishedRunsUnmaskingTuningExtendsAsIfTrainedThatLongFromTheStart()
    {
        var straight = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(straight, "--steps", "2", "--unmask-steps", "3", "--method", "McDiT")).Exit);
        var split = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(split, "--steps", "2", "--unmask-steps", "1", "--method", "McDiT")).Exit);

        // In unmasking tuning stage 1 is fixed; a shorter tuning than already trained is refused with the length to give.
        var (bad, _, badError) = CliRunner.Run("train", "--resume", "--out", split, "--steps", "3");
        Assert.Equal(2, bad);
        Assert.Contains("--unmask-steps can still extend", badError);
        (bad, _, badError) = CliRunner.Run("train", "--resume", "--out", split, "--unmask-steps", "0");
        Assert.Equal(2, bad);
        Assert.Contains("give --unmask-steps 1 or more", badError);

        var (exit, output, error) = CliRunner.Run("train", "--resume", "--out", split, "--unmask-steps", "3");
        Assert.True(exit == 0, error);
        Assert.Contains("Resuming", output);
        var run = new RunFolder(split);
        Assert.Equal(3, run.LoadSettings().UnmaskSteps);
        var a = new RunFolder(straight).Checkpoints.Latest!;
        var b = run.Checkpoints.Latest!;
        Assert.EndsWith("step-0000005", b);
        foreach (var f in new[] { "model.safetensors", "ema.safetensors", "optimizer.safetensors", "branches.safetensors" })
            Assert.True(File.ReadAllBytes(Path.Combine(a, f)).SequenceEqual(File.ReadAllBytes(Path.Combine(b, f))), $"{f} differs after extending");
        Assert.Equal(MetricsLog.ReadAll(new RunFolder(straight).MetricsFile).Select(e => e.Loss), MetricsLog.ReadAll(run.MetricsFile).Select(e => e.Loss));
    }

    [Fact]
    public void TheNoiseLevelLabelDropoutAndShiftOptionsReachTheObjectiveAndTheirDefaultsLeaveItAsItWas()
    {
        var given = new TrainSettings { PMean = -0.8, PStd = 1.0, LabelDropout = 0.05, TrainShift = 2 }.Validated().ToTrainerOptions().MethodOptions!;
        Assert.Equal((-0.8, 1.0, 0.05, 2), (given.PMean, given.PStd, given.LabelDropout, given.ShiftAugmentation));
        var defaults = new TrainSettings().Validated().ToTrainerOptions().MethodOptions!;
        Assert.Equal(McDit.Torch.Training.MethodOptions.For(McDit.Torch.Training.TrainingMethod.McDiT), defaults);
    }

    [Fact]
    public void ADemoRunAskedForMoreStepsGetsThemInAllByLongerUnmaskingTuning()
    {
        var folder = Folder();
        Assert.Equal(0, CliRunner.Run("demo", "--out", folder, "--steps", "3", "--fd-samples", "0", "--device", "cpu").Exit); // 1 masked + 2
        var (exit, _, error) = CliRunner.Run("demo", "--out", folder, "--steps", "5", "--fd-samples", "0", "--device", "cpu");
        Assert.True(exit == 0, error);
        var run = new RunFolder(folder);
        var settings = run.LoadSettings();
        Assert.Equal((1L, 4L), (settings.Steps, settings.UnmaskSteps)); // stage 1 was over: the tuning makes up the total
        Assert.Equal(5, MetricsLog.ReadAll(run.MetricsFile).Count);
        (exit, _, error) = CliRunner.Run("demo", "--out", folder, "--steps", "4", "--fd-samples", "0", "--device", "cpu");
        Assert.Equal(2, exit);
        Assert.Contains("--steps 4 is too small", error);
        Assert.Contains("give --steps 5 or more", error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void StartingOverAnExistingRunIsRefused()
    {
        var folder = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(folder, "--steps", "1", "--method", "DiT")).Exit);
        var (exit, _, error) = CliRunner.Run(Tiny(folder, "--steps", "1", "--method", "DiT"));
        Assert.Equal(2, exit); // a usage error: choose another --out
        Assert.Contains("--resume", error);
    }

    [Fact]
    public void SampleWritesALabelledGridFromARun()
    {
        var folder = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(folder, "--steps", "1", "--method", "DiT", "--shift", "2", "--shift-below", "8")).Exit);
        var model = McDit.Cli.Runs.ModelSource.Load(new Microsoft.ML.MLContext(0), folder, "cpu", out _);
        Assert.Equal((2, 8.0), (model.AlternatingShift, model.AlternatingShiftSigmaMax)); // the trained model keeps its sampler's shift
        Assert.Equal(40, model.WithSampling(alternatingShift: 40).AlternatingShift); // a roll wraps: a shift past the image side is valid
        var png = Path.Combine(folder, "grid.png");
        var (exit, output, error) = CliRunner.Run("sample", "--from", folder, "--out", png, "--classes", "0,3", "--per-class", "2", "--steps", "2",
            "--guidance", "3", "--guidance-interval", "0.28,5.42", "--shift", "1", "--device", "cpu");
        Assert.True(exit == 0, error);
        Assert.Contains("4 samples", output);
        Assert.Matches(@"Sampling took \d+\.\d\d s: \d+\.\d\d images/s", output);
        using var grid = Image.Load(png);
        Assert.True(grid.Height >= 2 * 56 && grid.Height < 3 * 56, $"two rows of 28 px at scale 2, got {grid.Height}");
    }

    [Fact]
    public void AShortDemoTrainsMcDitAndWritesALabelledGrid()
    {
        var folder = Folder();
        var (exit, output, error) = CliRunner.Run("demo", "--out", folder, "--steps", "2", "--fd-samples", "0", "--device", "cpu");
        Assert.True(exit == 0, error);
        var run = new RunFolder(folder);
        var saved = run.LoadSettings();
        Assert.Equal(McDit.Torch.Training.TrainingMethod.McDiT, saved.Method);
        Assert.Equal(0.28, saved.GuidanceSigmaMin); // the demo guides above σ = 0.28 only
        // Trained on shifted images and lower noise levels, sampled with the alternating shift.
        Assert.Equal((-0.8, 2, 2), (saved.PMean, saved.TrainShift, saved.SamplerShift));
        var model = McDit.Cli.Runs.ModelSource.Load(new Microsoft.ML.MLContext(0), folder, "cpu", out _);
        Assert.Equal((0.28, double.PositiveInfinity), model.GuidanceInterval); // kept in model.zip
        Assert.Equal(2, model.AlternatingShift);
        Assert.True(File.Exists(Path.Combine(run.SamplesFolder, "final.png")));
        Assert.True(File.Exists(run.LossCurveFile));
        Assert.Contains("one row per class", output);
    }

    [Fact]
    public void TheDemoGridIsDrawnFromTheEvaluationSamplesOneRowPerClass()
    {
        // 30 samples with classes in turn (as the evaluation generates them); image i is filled with a grey level of its class.
        var classes = Enumerable.Range(0, 30).Select(i => i % 10).ToArray();
        var values = classes.SelectMany(c => Enumerable.Repeat(c / 9f * 2 - 1, 28 * 28)).ToArray();
        using var images = TorchSharp.torch.tensor(values, new long[] { 30, 1, 28, 28 });
        var path = Path.Combine(Folder(), "final.png");
        McDit.Cli.Commands.DemoCommand.SaveGrid(images, classes, 10, null, columns: 10, path);
        using var grid = Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(path);
        Assert.True(grid.Height >= 10 * 56 && grid.Height < 11 * 56, $"ten rows of 28 px at scale 2, got {grid.Height}");
        for (int row = 0; row < 10; row++)
        {
            // Three samples per class make three columns; the right-most cell of each row shows that row's class.
            int expected = (int)MathF.Round((row / 9f) * 255);
            var pixel = grid[grid.Width - 28, row * (56 + McDit.MLNet.Imaging.ImageGrid.Padding) + 28];
            Assert.InRange(pixel.R, expected - 1, expected + 1);
        }
    }

    [Fact]
    public void TheSmoothedLossStartsAgainAtTheUnmaskingStage()
    {
        static MetricsLog.Entry E(long step, int stage, double loss) => new(step, stage, 0, loss, loss, 0, 0, 0, 1e-3, 0);
        var entries = Enumerable.Range(1, 50).Select(i => E(i, 1, 3.0)).Concat(Enumerable.Range(51, 50).Select(i => E(i, 2, 0.5))).ToList();
        var smoothed = LossCurve.Smooth(entries);
        Assert.Equal(3.0, smoothed[49], 12);
        Assert.Equal(0.5, smoothed[50], 12); // not a blend of 3.0 carried across the boundary
        Assert.Equal(0.5, smoothed[^1], 12);
    }

    [Fact]
    public void TheSmoothedLossOfAFallingLineDoesNotLagAboveIt()
    {
        var ramp = Enumerable.Range(0, 1000).Select(i => 3.0 - 0.002 * i).ToArray();
        var smoothed = McDit.MLNet.Imaging.LossSmoothing.Smooth(ramp);
        for (int i = 20; i < 980; i++) Assert.Equal(ramp[i], smoothed[i], 9); // centred: the mean of a line is on the line
        var noisy = ramp.Select((v, i) => v + (i % 2 == 0 ? 0.3 : -0.3)).ToArray();
        Assert.InRange(McDit.MLNet.Imaging.LossSmoothing.Smooth(noisy)[500], ramp[500] - 0.02, ramp[500] + 0.02);
    }

    [Theory]
    [InlineData(1020, 320)] // the default: 320 masked + 700 unmasking-tuning steps
    [InlineData(2040, 640)]
    [InlineData(2, 1)]
    [InlineData(1, 1)]     // one step is a masked step: stage 1 is never empty
    public void DemoStepsKeepTheDefaultsShareOfMaskedSteps(long total, long masked)
    {
        Assert.Equal(masked, McDit.Cli.Commands.DemoCommand.MaskedSteps(total));
        var defaults = McDit.Cli.Commands.DemoCommand.Settings;
        Assert.Equal(defaults.Steps, McDit.Cli.Commands.DemoCommand.MaskedSteps(defaults.TotalSteps));
    }

    [Fact]
    public void EvaluateMeasuresFdAgainstAnImageFolderAndLogsIt()
    {
        var folder = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(folder, "--steps", "1", "--method", "DiT")).Exit);
        // A small reference: 6 held-out Fashion-MNIST images written as PNGs in two class folders.
        var reference = Path.Combine(folder, "reference");
        var heldOut = McDit.Torch.Data.FashionMnist.LoadEmbedded(McDit.Torch.Data.FashionMnistSplit.HeldOut);
        for (int i = 0; i < 6; i++)
        {
            var dir = Path.Combine(reference, "class" + (i % 2));
            Directory.CreateDirectory(dir);
            using var png = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.L8>(heldOut.GetImage(i), 28, 28);
            png.Save(Path.Combine(dir, $"{i}.png"));
        }
        var (exit, output, error) = CliRunner.Run("evaluate", "--from", folder, "--reference", reference, "--samples", "4", "--steps", "1",
            "--device", "cpu", "--reference-cache", Path.Combine(folder, "reference-stats.safetensors"));
        Assert.True(exit == 0, error);
        Assert.Contains("FD-ResNet18", output);
        Assert.True(File.Exists(Path.Combine(folder, "reference-stats.safetensors")));
        var line = Assert.Single(File.ReadAllLines(new RunFolder(folder).EvaluationsFile));
        Assert.Contains("\"frechet_distance\"", line);
    }

    [Fact]
    public void TrainingInAVaeLatentSpaceDecodesTheSamples()
    {
        var folder = Folder();
        // RGB images in two class folders, and a tiny random-weight VAE in the diffusers layout (16 px → 4×8×8 latents).
        var data = Path.Combine(folder, "images");
        for (int i = 0; i < 8; i++)
        {
            var dir = Path.Combine(data, i % 2 == 0 ? "red" : "blue");
            Directory.CreateDirectory(dir);
            using var png = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(16, 16,
                i % 2 == 0 ? new SixLabors.ImageSharp.PixelFormats.Rgb24((byte)(200 + i), 20, 20) : new SixLabors.ImageSharp.PixelFormats.Rgb24(20, 20, (byte)(200 + i)));
            png.Save(Path.Combine(dir, $"{i}.png"));
        }
        var vae = Path.Combine(folder, "vae");
        McDit.Torch.Runtime.TorchBackend.EnsureInitialized();
        using (var model = new McDit.Torch.Vae.AutoencoderKL(new McDit.Torch.Vae.AutoencoderKLConfig
               { BlockOutChannels = new[] { 32, 64 }, LayersPerBlock = 1, NormNumGroups = 32, LatentChannels = 4, SampleSize = 16 }))
            model.Save(vae);

        var (exit, output, error) = CliRunner.Run("train", "--out", folder, "--data", data, "--image-size", "16", "--vae", vae,
            "--model", "Tiny/2", "--steps", "2", "--batch-size", "4", "--sampler-steps", "1", "--grid-columns", "2", "--device", "cpu",
            "--sample-every", "0", "--checkpoint-every", "0");
        Assert.True(exit == 0, error + output);
        var run = new RunFolder(folder);
        Assert.True(File.Exists(run.ModelFile));
        using var grid = Image.Load(Path.Combine(run.SamplesFolder, "final.png"));
        Assert.True(grid.Height >= 2 * 32 && grid.Height < 3 * 32, $"two rows of decoded 16 px images at scale 2, got {grid.Height}");

        // `sample` decodes too (it once passed the 4-channel 8×8 latents to the grid writer): single RGB 16×16 files.
        var pngs = Path.Combine(folder, "pngs");
        (exit, output, error) = CliRunner.Run("sample", "--from", folder, "--format", "png", "--out", pngs, "--per-class", "1", "--steps", "1", "--device", "cpu");
        Assert.True(exit == 0, error + output);
        var files = Directory.GetFiles(pngs, "*.png").Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { "0_00.png", "1_00.png" }, files);
        using var single = Image.Load(Path.Combine(pngs, "0_00.png"));
        Assert.Equal((16, 16), (single.Width, single.Height));
    }

    [Fact]
    public void SampleWritesSingleImagesAndEvaluateImagesScoresThemWithoutSampling()
    {
        var folder = Folder();
        Assert.Equal(0, CliRunner.Run(Tiny(folder, "--steps", "1", "--method", "DiT")).Exit);
        var pngs = Path.Combine(folder, "pngs");
        var (exit, output, error) = CliRunner.Run("sample", "--from", folder, "--format", "png", "--grid", "--out", pngs, "--classes", "0,3",
            "--per-class", "2", "--steps", "1", "--device", "cpu");
        Assert.True(exit == 0, error);
        Assert.Equal(new[] { "0_00.png", "0_01.png", "3_00.png", "3_01.png", "grid.png" },
            Directory.GetFiles(pngs).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        using (var one = Image.Load(Path.Combine(pngs, "3_01.png"))) Assert.Equal((28, 28), (one.Width, one.Height));

        // The real held-out images as files of the same naming: a reference folder of 2 per class, and 5 per class to score.
        var heldOut = McDit.Torch.Data.FashionMnist.LoadEmbedded(McDit.Torch.Data.FashionMnistSplit.HeldOut);
        var reference = Path.Combine(folder, "reference");
        var real = Path.Combine(folder, "real");
        Directory.CreateDirectory(real);
        var seen = new int[10];
        for (int i = 0; i < heldOut.Count; i++)
        {
            int c = heldOut.Labels[i];
            if (seen[c] >= 7) continue;
            using var png = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.L8>(heldOut.GetImage(i), 28, 28);
            if (seen[c] < 2)
            {
                Directory.CreateDirectory(Path.Combine(reference, c.ToString()));
                png.Save(Path.Combine(reference, c.ToString(), $"{i}.png"));
            }
            else png.Save(Path.Combine(real, $"{c}_{seen[c] - 2}.png"));
            seen[c]++;
        }
        string[] Evaluate(string images) => new[] { "evaluate", "--images", images, "--from", folder, "--reference", reference,
            "--reference-cache", Path.Combine(folder, "reference-stats.safetensors") };
        (exit, output, error) = CliRunner.Run(Evaluate(real));
        Assert.True(exit == 0, error + output);
        Assert.Contains("50 files", output);
        var line = System.Text.Json.JsonDocument.Parse(File.ReadAllLines(new RunFolder(folder).EvaluationsFile).Last()).RootElement;
        double realAccuracy = line.GetProperty("class_accuracy").GetDouble();
        Assert.True(realAccuracy >= 0.7, $"real images: {realAccuracy}\n{output}");
        Assert.True(line.GetProperty("frechet_distance").GetDouble() > 0);
        Assert.Equal(10, line.GetProperty("per_class_accuracy").EnumerateObject().Count());
        // Each class's ceiling on the real reference images, beside the samples' figures.
        var realPerClass = line.GetProperty("real_per_class_accuracy").EnumerateObject().ToArray();
        Assert.Equal(10, realPerClass.Length);
        Assert.InRange(realPerClass.Average(c => c.Value.GetDouble()), realAccuracy - 0.1, realAccuracy + 0.1);
        Assert.Contains("real images  ", output);

        // The one-step model's samples: FD and accuracy of 4 files (the grid is not read), accuracy well below the real images'.
        (exit, output, error) = CliRunner.Run(Evaluate(pngs));
        Assert.True(exit == 0, error + output);
        Assert.Contains("4 files", output);
        line = System.Text.Json.JsonDocument.Parse(File.ReadAllLines(new RunFolder(folder).EvaluationsFile).Last()).RootElement;
        Assert.True(line.GetProperty("class_accuracy").GetDouble() < realAccuracy, output);
        Assert.Contains("class acc.", output);
    }

    [Fact]
    public void AVaeThatDoesNotExistIsNamedBeforeTraining()
    {
        var (exit, _, error) = CliRunner.Run("train", "--out", Folder(), "--vae", "/no/such/vae", "--steps", "1");
        Assert.Equal(2, exit);
        Assert.Contains("/no/such/vae", error);
        Assert.Contains("sd-vae-ft-mse", error);
    }

    public void Dispose()
    {
        foreach (var f in _folders) if (Directory.Exists(f)) Directory.Delete(f, true);
    }
}
