using System.CommandLine;
using McDit.MLNet.Generation;
using McDit.Torch.Interop;
using McDit.Torch.Runtime;
using McDit.Torch.Vae;
using Microsoft.ML;

namespace McDit.Cli.Commands;

/// <summary><c>mcdit import</c>: a DiT or MaskDiT checkpoint (.pt, .safetensors) into a McDit model zip.</summary>
public static class ImportCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var file = new Argument<string>("FILE") { Description = "A .pt/.pth file written by torch.save (a state dict, or a training checkpoint with model, ema, opt, args) or a .safetensors file." };
        file.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (string.IsNullOrWhiteSpace(v) || !File.Exists(v)) r.AddError($"FILE '{v}' does not exist: expected a .pt, .pth or .safetensors file.");
        });
        var from = new Option<ReferenceFormat>("--from") { Description = "Which implementation wrote it: dit (facebookresearch/DiT) or maskdit (Anima-Lab/MaskDiT).", Required = true };
        var ema = new Option<bool>("--ema") { Description = "Take the weight EMA ('ema') of a training checkpoint instead of its trained weights ('model')." };
        var outFile = new Option<string?>("--out") { Description = "The model zip to write (default: FILE with .zip)." }.OptionalPath(mustExist: false, "a model .zip to write");
        var heads = new Option<int?>("--heads") { Description = "Encoder attention heads (default: from the width, for the DiT sizes)." };
        var decoderHeads = new Option<int?>("--decoder-heads") { Description = "MaskDiT decoder attention heads (default: 16 for its 512-wide decoder)." };
        var classes = new Option<int?>("--num-classes") { Description = "Number of classes; tells a DiT table of C + 1 rows (with the null label) from one of C rows (trained without label dropout)." };
        var vae = new Option<string?>("--vae") { Description = "A VAE to store in the zip (a diffusers AutoencoderKL folder, e.g. sd-vae-ft-ema), so samples are decoded to images." }.OptionalPath(mustExist: true, "a VAE folder or .safetensors file");
        foreach (var o in new[] { heads, decoderHeads, classes })
            o.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is { } v && v < 1) r.AddError($"{r.Option.Name} {v} is out of range: expected a whole number ≥ 1."); });
        var command = new Command("import", "Import the weights of a DiT or MaskDiT checkpoint (PyTorch .pt or .safetensors) as a McDit model zip; no code from the file runs.")
        {
            file, from, ema, outFile, heads, decoderHeads, classes, vae,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(file)!;
            var target = Path.GetFullPath(parse.GetValue(outFile) ?? Path.ChangeExtension(path, ".zip"));
            var ml = new MLContext(seed: 0);
            var options = new ReferenceImportOptions
            {
                UseEma = parse.GetValue(ema), NumHeads = parse.GetValue(heads), DecoderNumHeads = parse.GetValue(decoderHeads), NumClasses = parse.GetValue(classes),
            };
            var model = ml.McDit().LoadReference(path, parse.GetValue(from), options, device: "cpu");
            if (parse.GetValue(vae) is { } vaePath)
            {
                TorchBackend.EnsureInitialized();
                model = model.WithDecoder(AutoencoderKL.Load(vaePath));
            }
            McDitModelFile.Save(ml, model, null, target);
            var c = model.Config;
            output.WriteLine($"Imported {path} ({parse.GetValue(from)}): {c.InputSize}×{c.InputSize}×{c.InChannels}, patch {c.PatchSize}, width {c.HiddenSize}, depth {c.Depth}, " +
                $"{c.NumHeads} heads{(c.HasDecoder ? $", decoder {c.DecoderDepth}×{c.DecoderHiddenSize}" : "")}, {c.NumClasses} classes{(c.NumClasses > 0 && !c.HasNullLabel ? " (no null label)" : "")}, " +
                $"{(c.LearnSigma ? "learned sigma, " : "")}{c.Formulation}; sampler {model.Solver} {model.SamplingSteps} steps{(model.Decoder is null ? "" : ", with VAE")}. Wrote {target}");
            return 0;
        });
        return command;
    }
}
