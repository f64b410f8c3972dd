using System.CommandLine;
using System.Globalization;
using McDit.Cli.Runs;
using McDit.MLNet.Imaging;
using McDit.Torch.Data;
using McDit.Torch.Diffusion;
using Microsoft.ML;
using TorchSharp;

namespace McDit.Cli.Commands;

/// <summary><c>mcdit sample</c>: draws a labelled grid from a run, a checkpoint or a saved model.</summary>
public static class SampleCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var from = new Option<string>("--from") { Description = "A run folder (its model.zip, or its latest checkpoint while training), a checkpoint folder, or a saved model .zip.", Required = true }.Path(mustExist: true, "a run folder, a checkpoint folder or a model .zip");
        var outFile = new Option<string?>("--out") { Description = "With --format grid: the PNG file to write (default samples.png). With --format png: the folder for the single images (default samples)." }.OptionalPath(mustExist: false, "a PNG file (--format grid) or a folder (--format png) to write");
        var format = new Option<SampleFormat>("--format") { Description = "grid: one labelled PNG grid (one row per class). png: one PNG per sample, named <class>_<index>.png, in the --out folder (for `mcdit evaluate --images`).", DefaultValueFactory = _ => SampleFormat.Grid };
        var alsoGrid = new Option<bool>("--grid") { Description = "With --format png: also write grid.png of the same samples in the folder." };
        var classesOption = new Option<string?>("--classes") { Description = "Comma-separated class indices or names (e.g. 207,360 or \"golden retriever,otter\"), one grid row each (default: every class)." }.ClassList();
        var vae = new Option<string?>("--vae") { Description = "A VAE that decodes the model's latents (a diffusers AutoencoderKL folder such as sd-vae-ft-ema, or its .safetensors); needed for DiT/MaskDiT checkpoints." }.OptionalPath(mustExist: true, "a VAE folder or .safetensors file");
        var perClass = new Option<int>("--per-class") { Description = "Samples per class (grid columns).", DefaultValueFactory = _ => 8 }.InRange(1, 64, "samples per class");
        var seed = new Option<long>("--seed") { Description = "Seed of the starting noise: the same seed gives the same images.", DefaultValueFactory = _ => 0 };
        var steps = new Option<int>("--steps") { Description = "Sampler steps (a DiT/MaskDiT checkpoint: 250 DDPM / 40 Heun unless given).", DefaultValueFactory = _ => 18 }.InRange(1, OptionChecks.MaxSamplerSteps, "sampler steps");
        var solver = new Option<SamplerSolver>("--solver") { Description = "Heun, Euler, or Ddpm (DiT's sampler, for DiT weights; their default).", DefaultValueFactory = _ => SamplerSolver.Heun };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1: none).", DefaultValueFactory = _ => 1.5 }.Finite(-1000, 1000, "a guidance scale");
        var guidanceInterval = new Option<string?>("--guidance-interval") { Description = "Guide only at noise levels σ in (LOW, HIGH]: LOW or LOW,HIGH (e.g. 0.28 or 0.28,5.42); steps outside cost half (default: the model's, every step for a new one)." }.GuidanceInterval();
        var shift = new Option<int?>("--shift") { Description = "Pixels by which every other sampler evaluation sees the image rolled, so patch borders move between evaluations (half the patch size, e.g. 2 for Tiny/4; 0: none; default: the model's)." }.InRange(0, 64, "pixels of shift");
        var shiftBelow = new Option<double?>("--shift-below") { Description = "Apply --shift only at noise levels σ up to this (e.g. 2: the last steps, where only detail changes; default: the model's, every step for a new one)." }.Finite(0, double.MaxValue, "a noise level σ", minExclusive: true);
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "auto" }.Device();
        var command = new Command("sample", "Generate a grid of images, one row per class, from a trained model.")
        {
            from, outFile, format, alsoGrid, classesOption, perClass, seed, steps, solver, guidance, guidanceInterval, shift, shiftBelow, device, vae,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(alsoGrid) && result.GetValue(format) != SampleFormat.Png)
                result.AddError("--grid goes with --format png (--format grid writes only the grid)");
            var target = result.GetValue(outFile);
            if (target is null) return;
            if (result.GetValue(format) == SampleFormat.Png && File.Exists(target))
                result.AddError($"--out '{target}' is a file: --format png writes a folder of images");
            else if (result.GetValue(format) == SampleFormat.Grid && Directory.Exists(target))
                result.AddError($"--out '{target}' is a folder: --format grid writes one PNG file (or give --format png)");
        });
        command.SetAction(parse =>
        {
            var ml = new MLContext(seed: 0);
            var source = parse.GetValue(from)!;
            var generator = ModelSource.Load(ml, source, parse.GetValue(device)!, out var loadedFrom);
            // A reference checkpoint keeps its own sampler (DiT: DDPM 250, MaskDiT: Heun 40) unless --steps / --solver say otherwise.
            bool reference = File.Exists(source) && ModelSource.IsReferenceFile(source);
            generator = generator.WithSampling(
                samplingSteps: reference && parse.GetResult(steps) is null or { Implicit: true } ? null : parse.GetValue(steps),
                solver: reference && parse.GetResult(solver) is null or { Implicit: true } ? null : parse.GetValue(solver),
                guidanceScale: parse.GetValue(guidance),
                guidanceInterval: OptionChecks.ParseGuidanceInterval(parse.GetValue(guidanceInterval)),
                alternatingShift: parse.GetValue(shift), alternatingShiftSigmaMax: parse.GetValue(shiftBelow));
            if (parse.GetValue(vae) is { } vaePath)
            {
                var decoder = McDit.Torch.Vae.AutoencoderKL.Load(vaePath);
                decoder.to(McDit.Torch.Runtime.TorchBackend.ResolveDevice(parse.GetValue(device)!));
                generator = generator.WithDecoder(decoder);
            }
            else if (generator.Decoder is null && generator.Channels is not (1 or 3))
                throw new ArgumentException($"--from {source} samples {generator.Channels}-channel latents; give --vae FOLDER (the Stable Diffusion VAE, e.g. sd-vae-ft-ema) to decode them into images.");
            int classes = generator.NumberOfClasses;
            var rows = ParseClasses(parse.GetValue(classesOption), classes, generator.ClassNames) ?? Enumerable.Range(0, Math.Max(1, classes)).ToArray();
            int columns = parse.GetValue(perClass);
            var labels = classes == 0 ? null : rows.SelectMany(c => Enumerable.Repeat(c, columns)).ToArray();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            // Images, not latents: a latent (--vae) model's samples are decoded.
            using var samples = generator.GenerateDecoded(rows.Length * columns, labels, parse.GetValue(seed));
            double seconds = clock.Elapsed.TotalSeconds;
            var names = classes == 0 ? null
                : rows.Select(r => generator.ClassNames is { } n && r < n.Count ? n[r] : "class " + r).ToList();
            if (parse.GetValue(format) == SampleFormat.Png)
            {
                var folder = Path.GetFullPath(parse.GetValue(outFile) ?? "samples");
                var written = ImageFiles.SavePngs(samples, folder, labels);
                output.WriteLine($"Wrote {written.Count} images ({rows.Length} classes × {columns}, named <class>_<index>.png) from {loadedFrom} to {folder}");
                if (parse.GetValue(alsoGrid))
                {
                    var gridPath = Path.Combine(folder, ImageFiles.GridFileName);
                    ImageGrid.SavePng(samples, columns, gridPath, scale: 2, rowLabels: names);
                    output.WriteLine($"Wrote the grid to {gridPath}");
                }
                output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"Sampling took {seconds:F2} s: {rows.Length * columns / seconds:F2} images/s"));
                return 0;
            }
            var path = Path.GetFullPath(parse.GetValue(outFile) ?? "samples.png");
            ImageGrid.SavePng(samples, columns, path, scale: 2, rowLabels: names);
            output.WriteLine($"Wrote {rows.Length * columns} samples ({rows.Length} rows × {columns}) from {loadedFrom} to {path}");
            output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"Sampling took {seconds:F2} s: {rows.Length * columns / seconds:F2} images/s"));
            return 0;
        });
        return command;
    }

    /// <summary>What <c>mcdit sample</c> writes.</summary>
    public enum SampleFormat
    {
        /// <summary>One labelled grid PNG.</summary>
        Grid,
        /// <summary>One PNG per sample in a folder.</summary>
        Png,
    }

    private static int[]? ParseClasses(string? text, int numClasses, IReadOnlyList<string>? names)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var c))
            {
                if (c < 0 || c >= numClasses)
                    throw new ArgumentException($"--classes: '{part}' is not a class index of this model (0..{numClasses - 1}).");
                result.Add(c);
                continue;
            }
            if (names is null)
                throw new ArgumentException($"--classes: '{part}' is a name, but this model has no class names; give class indices 0..{numClasses - 1}.");
            var found = ImageNetClasses.Find(part, names);
            if (found is null)
            {
                var close = ImageNetClasses.Suggest(part, names);
                throw new ArgumentException($"--classes: '{part}' is not a class name of this model" +
                    (close.Count > 0 ? $"; did you mean {string.Join(", ", close.Select(n => $"'{n}'"))}?" : $" (e.g. '{names[0]}'); indices 0..{numClasses - 1} work too."));
            }
            result.Add(found.Value);
        }
        return result.ToArray();
    }
}
