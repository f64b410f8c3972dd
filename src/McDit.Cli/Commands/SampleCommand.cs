using System.CommandLine;
using System.Globalization;
using McDit.Cli.Runs;
using McDit.MLNet.Imaging;
using McDit.Torch.Data;
using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;

namespace McDit.Cli.Commands;

/// <summary><c>mcdit sample</c>: draws a labelled grid from a run's latest checkpoint or any checkpoint folder.</summary>
public static class SampleCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var from = new Option<string>("--from") { Description = "A run folder (its latest checkpoint is used) or a checkpoint folder.", Required = true };
        var outFile = new Option<string>("--out") { Description = "PNG file to write.", DefaultValueFactory = _ => "samples.png" };
        var classes = new Option<string?>("--classes") { Description = "Comma-separated class indices, one grid row each (default: every class)." };
        var perClass = new Option<int>("--per-class") { Description = "Samples per class (grid columns).", DefaultValueFactory = _ => 8 };
        var seed = new Option<long>("--seed") { Description = "Seed of the starting noise: the same seed gives the same images.", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--steps") { Description = "Sampler steps.", DefaultValueFactory = _ => 18 };
        var solver = new Option<SamplerSolver>("--solver") { Description = "Heun or Euler.", DefaultValueFactory = _ => SamplerSolver.Heun };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1: none).", DefaultValueFactory = _ => 1.5 };
        var raw = new Option<bool>("--no-ema") { Description = "Use the trained weights instead of their EMA." };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "auto" };
        var command = new Command("sample", "Generate a grid of images, one row per class, from a trained model.")
        {
            from, outFile, classes, perClass, seed, steps, solver, guidance, raw, device,
        };
        command.SetAction(parse =>
        {
            var source = parse.GetValue(from)!;
            var (checkpoint, classNames) = Resolve(source);
            using var model = Checkpoint.LoadModel(checkpoint, ema: !parse.GetValue(raw), device: TorchBackend.ResolveDevice(parse.GetValue(device)));
            int count = Math.Max(1, model.Config.NumClasses);
            var rows = ParseClasses(parse.GetValue(classes), model.Config.NumClasses) ?? Enumerable.Range(0, count).ToArray();
            int columns = parse.GetValue(perClass);
            if (columns < 1) throw new ArgumentException($"--per-class {columns} is invalid: expected at least 1.");
            var labels = model.Config.NumClasses == 0 ? null : rows.SelectMany(c => Enumerable.Repeat(c, columns)).ToArray();
            var options = new SamplerOptions { Steps = parse.GetValue(steps), Solver = parse.GetValue(solver), GuidanceScale = parse.GetValue(guidance) };
            using var samples = ModelSampler.Generate(model, labels, rows.Length * columns, parse.GetValue(seed), options);
            using var clamped = samples.clamp(-1, 1);
            var names = model.Config.NumClasses == 0 ? null : rows.Select(r => classNames is not null && r < classNames.Count ? classNames[r] : "class " + r).ToList();
            var path = Path.GetFullPath(parse.GetValue(outFile)!);
            ImageGrid.SavePng(clamped, columns, path, scale: 2, rowLabels: names);
            output.WriteLine($"Wrote {rows.Length * columns} samples ({rows.Length} rows × {columns}) to {path}");
            return 0;
        });
        return command;
    }

    private static (string Checkpoint, IReadOnlyList<string>? ClassNames) Resolve(string source)
    {
        var run = new RunFolder(source);
        if (run.HasRun)
        {
            var settings = run.LoadSettings();
            var latest = run.LatestCheckpoint ?? throw new InvalidOperationException($"Run '{run.Path}' has no checkpoint yet.");
            bool fashion = settings.Data is "embedded" or "fashion-mnist";
            return (latest, fashion ? FashionMnist.ClassNames : null);
        }
        if (File.Exists(Path.Combine(source, "config.json")) && File.Exists(Path.Combine(source, "ema.safetensors")))
            return (source, null);
        throw new DirectoryNotFoundException($"--from '{source}' is neither a run folder (run.json) nor a checkpoint folder (config.json + ema.safetensors).");
    }

    private static int[]? ParseClasses(string? text, int numClasses)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var c) || c < 0 || c >= numClasses)
                throw new ArgumentException($"--classes: '{part}' is not a class index of this model (0..{numClasses - 1}).");
            result.Add(c);
        }
        return result.ToArray();
    }
}
