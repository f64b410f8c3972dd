using System.CommandLine;
using System.Globalization;
using McDit.Cli.Runs;
using McDit.Torch.Diffusion;
using Microsoft.ML;

namespace McDit.Cli.Commands;

/// <summary><c>mcdit evaluate</c>: FD-ResNet18 of a model's samples against real held-out images.</summary>
public static class EvaluateCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var from = new Option<string?>("--from") { Description = "A run folder, a checkpoint folder, or a saved model .zip, to sample from (with --images: only names the run whose data and evaluations.jsonl to use)." }.OptionalPath(mustExist: true, "a run folder, a checkpoint folder or a model .zip");
        var imagesOption = new Option<string?>("--images") { Description = "Score a folder of generated PNGs (<class>_<index>.png, as `mcdit sample --format png` writes) instead of sampling." }.OptionalPath(mustExist: true, "a folder of generated PNG images");
        var reference = new Option<string?>("--reference") { Description = "Real images to compare with: 'embedded' (held-out Fashion-MNIST), 'fashion-mnist', or a data folder (its test split, or an image folder). Default: the held-out split of the run's data." }.OptionalDataSource();
        var samples = new Option<int>("--samples") { Description = "Generated images to featurise (more: less biased FD, slower).", DefaultValueFactory = _ => 500 }.InRange(2, OptionChecks.MaxFdSamples, "generated images (a covariance needs two)");
        var seed = new Option<long>("--seed") { Description = "Seed of the samples.", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--steps") { Description = "Sampler steps.", DefaultValueFactory = _ => 18 }.InRange(1, OptionChecks.MaxSamplerSteps, "sampler steps");
        var solver = new Option<SamplerSolver>("--solver") { Description = "Heun or Euler.", DefaultValueFactory = _ => SamplerSolver.Heun };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1: none).", DefaultValueFactory = _ => 1.5 }.Finite(-1000, 1000, "a guidance scale");
        var guidanceInterval = new Option<string?>("--guidance-interval") { Description = "Guide only at noise levels σ in (LOW, HIGH]: LOW or LOW,HIGH (e.g. 0.28 or 0.28,5.42); steps outside cost half (default: the model's, every step for a new one)." }.GuidanceInterval();
        var shift = new Option<int?>("--shift") { Description = "Pixels by which every other sampler evaluation sees the image rolled, so patch borders move between evaluations (half the patch size, e.g. 2 for Tiny/4; 0: none; default: the model's)." }.InRange(0, 64, "pixels of shift");
        var shiftBelow = new Option<double?>("--shift-below") { Description = "Apply --shift only at noise levels σ up to this (e.g. 2: the last steps, where only detail changes; default: the model's, every step for a new one)." }.Finite(0, double.MaxValue, "a noise level σ", minExclusive: true);
        var cache = new Option<string?>("--reference-cache") { Description = "File for the reference statistics (default: a per-user cache named after the reference)." }.OptionalPath(mustExist: false, "a file for the reference statistics");
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "auto" }.Device();
        var command = new Command("evaluate",
            "Measure FD-ResNet18 (Fréchet distance in ImageNet ResNet-18 features) of generated against real images; writes evaluations.jsonl in a run folder.")
        {
            from, imagesOption, reference, samples, seed, steps, solver, guidance, guidanceInterval, shift, shiftBelow, cache, device,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(from) is null && result.GetValue(imagesOption) is null)
                result.AddError("Option '--from' or '--images' is required: a model to sample from, or a folder of generated images");
            if (result.GetValue(imagesOption) is { } folder && File.Exists(folder))
                result.AddError($"--images '{folder}' is a file: expected a folder of PNG images");
        });
        command.SetAction(parse =>
        {
            var ml = new MLContext(seed: 0);
            if (parse.GetValue(imagesOption) is { } imageFolder)
                return ScoreFolder(ml, imageFolder, parse.GetValue(from), parse.GetValue(reference), parse.GetValue(cache), output);
            var source = parse.GetValue(from)!;
            var generator = ModelSource.Load(ml, source, parse.GetValue(device)!, out var loadedFrom)
                .WithSampling(samplingSteps: parse.GetValue(steps), solver: parse.GetValue(solver), guidanceScale: parse.GetValue(guidance),
                guidanceInterval: OptionChecks.ParseGuidanceInterval(parse.GetValue(guidanceInterval)),
                alternatingShift: parse.GetValue(shift), alternatingShiftSigmaMax: parse.GetValue(shiftBelow));
            var run = new RunFolder(source);
            var data = parse.GetValue(reference) ?? (run.HasRun ? run.LoadSettings().Data : "embedded");
            int n = parse.GetValue(samples);
            bool explicitReference = parse.GetValue(reference) is not null;
            var referenceName = Directory.Exists(data) ? Path.GetFullPath(data) : $"{data} (held-out)";
            // An explicit image folder is the reference itself, brought to the generator's size and channels.
            var folderOptions = explicitReference ? new McDit.MLNet.Data.ImageFolderOptions { ImageSize = generator.Height, Channels = generator.Channels } : null;
            var referenceView = DataSources.Load(ml, data, heldOut: true, folderOptions);
            // Class accuracy needs a reference labelled with the model's classes (an image folder of other classes has no ceiling to report).
            var training = referenceView.ClassNames.Count == generator.NumberOfClasses
                ? ClassifierTraining(ml, run.HasRun ? run.LoadSettings().Data : data, generator.NumberOfClasses, generator.ImageChannels, generator.ImageHeight, output)
                : null;
            using var fd = new FdEvaluation(ml, referenceView, referenceName,
                parse.GetValue(cache) ?? FdEvaluation.DefaultCacheFile(referenceName), output, training);
            var result = fd.Evaluate(generator, n, parse.GetValue(seed));
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  model        {loadedFrom} (step {result.Step})"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  FD-ResNet18  {result.FrechetDistance:F2}  ({result.Samples} generated vs {result.ReferenceCount} real: {referenceName})"));
            PrintAccuracy(output, result);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  sampler      {result.SamplerSteps} steps, guidance {result.Guidance}, seed {result.Seed}; {result.Seconds:F0} s"));
            if (run.HasRun)
            {
                FdEvaluation.Append(run.EvaluationsFile, result);
                output.WriteLine($"  written to   {run.EvaluationsFile}");
            }
            return 0;
        });
        return command;
    }

    /// <summary><c>mcdit evaluate --images DIR</c>: FD-ResNet18 and class accuracy of PNGs already generated.</summary>
    static int ScoreFolder(MLContext ml, string imageFolder, string? from, string? referenceOption, string? cacheOption, TextWriter output)
    {
        var run = from is null ? null : new RunFolder(from);
        var settings = run is { HasRun: true } ? run.LoadSettings() : null;
        var data = referenceOption ?? settings?.Data ?? "embedded";
        var referenceName = Directory.Exists(data) ? Path.GetFullPath(data) : $"{data} (held-out)";
        // The images are compared at the size and channels of the run's training images (or of the reference).
        McDit.MLNet.Data.ImageFolderOptions? folderOptions = null;
        if (referenceOption is not null)
        {
            var shape = settings is null ? null : DataSources.Load(ml, settings.Data, heldOut: false, new McDit.MLNet.Data.ImageFolderOptions { ImageSize = settings.ImageSize, Channels = 3 });
            int size = shape?.Height ?? (int)McDit.MLNet.Imaging.ImageFiles.LoadPngFolder(imageFolder, 3).Images.shape[2];
            folderOptions = new McDit.MLNet.Data.ImageFolderOptions { ImageSize = size, Channels = shape?.Channels ?? 3 };
        }
        var referenceView = DataSources.Load(ml, data, heldOut: true, folderOptions);
        var (images, classes, files) = McDit.MLNet.Imaging.ImageFiles.LoadPngFolder(imageFolder, referenceView.Channels, referenceView.Height, referenceView.Width);
        using var imageTensor = images;
        int numClasses = referenceView.ClassNames.Count;
        if (classes is not null && classes.Any(c => c >= numClasses))
            throw new InvalidDataException($"'{files[Array.FindIndex(classes, c => c >= numClasses)]}' names class {classes.Max()}, but '{data}' has {numClasses} classes (0..{numClasses - 1}).");
        if (classes is null) output.WriteLine($"No class accuracy: not every file in {imageFolder} is named <class>_<index>.png.");
        var training = classes is null ? null
            : ClassifierTraining(ml, settings?.Data ?? data, numClasses, referenceView.Channels, referenceView.Height, output);
        using var fd = new FdEvaluation(ml, referenceView, referenceName, cacheOption ?? FdEvaluation.DefaultCacheFile(referenceName), output, training);
        output.WriteLine($"Scoring {files.Count} images from {Path.GetFullPath(imageFolder)}...");
        var result = fd.Measure(imageTensor, step: 0, seed: 0, samplerSteps: 0, guidance: 0, classes: classes);
        output.WriteLine();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  images       {Path.GetFullPath(imageFolder)} ({files.Count} files)"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  FD-ResNet18  {result.FrechetDistance:F2}  ({result.Samples} generated vs {result.ReferenceCount} real: {referenceName})"));
        PrintAccuracy(output, result);
        if (run is { HasRun: true })
        {
            FdEvaluation.Append(run.EvaluationsFile, result with { Step = settings!.TotalSteps, Reference = referenceName + " | images " + Path.GetFullPath(imageFolder) });
            output.WriteLine($"  written to   {run.EvaluationsFile}");
        }
        return 0;
    }

    /// <summary>
    /// The real training images of <paramref name="data"/> for the class-accuracy classifier, when the model is
    /// conditional and the data has a training split of the generator's image size; null (with a note) otherwise.
    /// </summary>
    internal static IDataView? ClassifierTraining(MLContext ml, string data, int classes, int channels, int size, TextWriter output)
    {
        if (classes == 0) return null;
        try
        {
            var view = DataSources.Load(ml, data, heldOut: false, new McDit.MLNet.Data.ImageFolderOptions { ImageSize = size, Channels = channels });
            if (view.Channels != channels || view.Height != size || view.ClassNames.Count != classes)
            {
                output.WriteLine($"No class accuracy: the training images of '{data}' are {view.Channels}×{view.Height}×{view.Width} in {view.ClassNames.Count} classes, the model's {channels}×{size}×{size} in {classes}.");
                return null;
            }
            return view;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or InvalidDataException or ArgumentException)
        {
            output.WriteLine($"No class accuracy: no real training images to train its classifier on ({CliErrors.OneLine(e.Message)}).");
            return null;
        }
    }

    /// <summary>Prints the class-accuracy lines of a result (overall, ceiling, per class), when it has them.</summary>
    internal static void PrintAccuracy(TextWriter output, FdEvaluation.Result result)
    {
        if (result.ClassAccuracy is not { } accuracy || result.PerClassAccuracy is not { } perClass) return;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  class acc.   {accuracy:P1} of {result.Samples} samples (real held-out images: {result.RealClassAccuracy:P1}; worst class {result.WorstClassAccuracy:P0})"));
        output.WriteLine("  per class    " + string.Join(", ", perClass.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value:P0}"))));
        if (result.RealPerClassAccuracy is { Count: > 0 } real)
            output.WriteLine("  real images  " + string.Join(", ", real.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value:P0}"))) + " (the ceiling per class)");
    }
}
