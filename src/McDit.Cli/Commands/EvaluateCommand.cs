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
        var from = new Option<string>("--from") { Description = "A run folder, a checkpoint folder, or a saved model .zip.", Required = true }.Path(mustExist: true, "a run folder, a checkpoint folder or a model .zip");
        var reference = new Option<string?>("--reference") { Description = "Real images to compare with: 'embedded' (held-out Fashion-MNIST), 'fashion-mnist', or a data folder (its test split, or an image folder). Default: the held-out split of the run's data." }.OptionalDataSource();
        var samples = new Option<int>("--samples") { Description = "Generated images to featurise (more: less biased FD, slower).", DefaultValueFactory = _ => 500 }.InRange(2, OptionChecks.MaxFdSamples, "generated images (a covariance needs two)");
        var seed = new Option<long>("--seed") { Description = "Seed of the samples.", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--steps") { Description = "Sampler steps.", DefaultValueFactory = _ => 18 }.InRange(1, OptionChecks.MaxSamplerSteps, "sampler steps");
        var solver = new Option<SamplerSolver>("--solver") { Description = "Heun or Euler.", DefaultValueFactory = _ => SamplerSolver.Heun };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1: none).", DefaultValueFactory = _ => 1.5 }.Finite(-1000, 1000, "a guidance scale");
        var cache = new Option<string?>("--reference-cache") { Description = "File for the reference statistics (default: a per-user cache named after the reference)." }.OptionalPath(mustExist: false, "a file for the reference statistics");
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "auto" }.Device();
        var command = new Command("evaluate",
            "Measure FD-ResNet18 (Fréchet distance in ImageNet ResNet-18 features) of generated against real images; writes evaluations.jsonl in a run folder.")
        {
            from, reference, samples, seed, steps, solver, guidance, cache, device,
        };
        command.SetAction(parse =>
        {
            var ml = new MLContext(seed: 0);
            var source = parse.GetValue(from)!;
            var generator = ModelSource.Load(ml, source, parse.GetValue(device)!, out var loadedFrom)
                .WithSampling(samplingSteps: parse.GetValue(steps), solver: parse.GetValue(solver), guidanceScale: parse.GetValue(guidance));
            var run = new RunFolder(source);
            var data = parse.GetValue(reference) ?? (run.HasRun ? run.LoadSettings().Data : "embedded");
            int n = parse.GetValue(samples);
            bool explicitReference = parse.GetValue(reference) is not null;
            var referenceName = Directory.Exists(data) ? Path.GetFullPath(data) : $"{data} (held-out)";
            // An explicit image folder is the reference itself, brought to the generator's size and channels.
            var folderOptions = explicitReference ? new McDit.MLNet.Data.ImageFolderOptions { ImageSize = generator.Height, Channels = generator.Channels } : null;
            using var fd = new FdEvaluation(ml, DataSources.Load(ml, data, heldOut: true, folderOptions), referenceName,
                parse.GetValue(cache) ?? FdEvaluation.DefaultCacheFile(referenceName), output);
            var result = fd.Evaluate(generator, n, parse.GetValue(seed));
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  model        {loadedFrom} (step {result.Step})"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  FD-ResNet18  {result.FrechetDistance:F2}  ({result.Samples} generated vs {result.ReferenceCount} real: {referenceName})"));
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
}
