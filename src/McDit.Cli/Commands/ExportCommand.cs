using System.CommandLine;
using McDit.Cli.Runs;
using McDit.Torch.Interop;
using Microsoft.ML;

namespace McDit.Cli.Commands;

/// <summary><c>mcdit export</c>: a McDit model as a DiT or MaskDiT checkpoint (.pt or .safetensors).</summary>
public static class ExportCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var from = new Option<string>("--from") { Description = "A run folder, a checkpoint folder, or a saved model .zip.", Required = true }.Path(mustExist: true, "a run folder, a checkpoint folder or a model .zip");
        var to = new Option<ReferenceFormat>("--to") { Description = "The implementation to write for: dit (facebookresearch/DiT) or maskdit (Anima-Lab/MaskDiT).", Required = true };
        var outFile = new Option<string>("--out") { Description = "The file to write: .pt (torch.save format) or .safetensors.", Required = true }.OutputFile("a .pt, .pth or .safetensors file to write");
        outFile.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>() ?? "";
            if (!new[] { ".pt", ".pth", ".safetensors" }.Contains(Path.GetExtension(v).ToLowerInvariant()))
                r.AddError($"--out '{v}' has no .pt, .pth or .safetensors extension.");
        });
        var layout = new Option<ReferenceLayout>("--layout") { Description = "For .pt: Bare (a state dict, DiT's default) or Checkpoint ({model, ema}, MaskDiT's default).", DefaultValueFactory = _ => ReferenceLayout.Default };
        var command = new Command("export", "Write a McDit model's weights for DiT or MaskDiT (torch.load(path, weights_only=True) reads the .pt file), to continue with the reference code.")
        {
            from, to, outFile, layout,
        };
        command.SetAction(parse =>
        {
            var ml = new MLContext(seed: 0);
            var source = parse.GetValue(from)!;
            var model = ModelSource.Load(ml, source, "cpu", out var loadedFrom);
            // A checkpoint folder has the trained weights too: they go under 'model', the EMA under 'ema'.
            string? trained = File.Exists(Path.Combine(loadedFrom, "model.safetensors")) && File.Exists(Path.Combine(loadedFrom, "config.json")) ? loadedFrom : null;
            var path = Path.GetFullPath(parse.GetValue(outFile)!);
            var notes = ml.McDit().ExportReference(model, parse.GetValue(to), path, parse.GetValue(layout), trained);
            foreach (var note in notes) output.WriteLine("note: " + note);
            output.WriteLine($"Exported {loadedFrom} for {parse.GetValue(to)} to {path}");
            return 0;
        });
        return command;
    }
}
