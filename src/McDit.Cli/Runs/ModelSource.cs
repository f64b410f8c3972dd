using McDit.MLNet.Generation;
using McDit.Torch.Data;
using McDit.Torch.Interop;
using McDit.Torch.Runtime;
using Microsoft.ML;

namespace McDit.Cli.Runs;

/// <summary>Finds a generator for <c>--from</c>: a run folder (model.zip, else its latest checkpoint) or a checkpoint folder.</summary>
public static class ModelSource
{
    /// <summary>Loads the generator onto <paramref name="device"/>; <paramref name="description"/> says what was loaded.</summary>
    /// <exception cref="InvalidDataException">The model zip or checkpoint is damaged; the message names the file.</exception>
    public static McDitModel Load(MLContext ml, string from, string device, out string description)
    {
        // The device is checked before anything is read, for every kind of source.
        TorchBackend.ResolveDevice(device);
        var run = new RunFolder(from);
        if (run.HasRun)
        {
            if (File.Exists(run.ModelFile))
            {
                description = run.ModelFile;
                return McDitModelFile.LoadGenerator(ml, run.ModelFile, device);
            }
            var (latest, damaged) = run.Checkpoints.FindLatest();
            if (latest is null)
                throw damaged.Count > 0
                    ? new InvalidDataException($"Run '{run.Path}' has no model.zip and every checkpoint is damaged (the newest: {damaged[0].Problem}).")
                    : new InvalidOperationException($"Run '{run.Path}' has neither model.zip nor a checkpoint yet.");
            description = latest;
            return ml.McDit().LoadCheckpoint(latest, ClassNamesOf(run), device: device);
        }
        if (File.Exists(Path.Combine(from, "config.json")) && File.Exists(Path.Combine(from, "ema.safetensors")))
        {
            description = from;
            // A checkpoint of a run folder (RUN/checkpoints/step-N) takes its class names from the run's data.
            var owner = new RunFolder(Path.Combine(from, "..", ".."));
            return ml.McDit().LoadCheckpoint(from, owner.HasRun ? ClassNamesOf(owner) : null, device: device);
        }
        if (File.Exists(from) && IsReferenceFile(from))
        {
            // A DiT / MaskDiT checkpoint: its weight EMA (DiT-XL-2-256x256.pt is one already), read without running code from it.
            description = from;
            return ml.McDit().LoadReference(from, options: new ReferenceImportOptions { UseEma = true }, device: device);
        }
        if (File.Exists(from))
        {
            description = from;
            return McDitModelFile.LoadGenerator(ml, from, device);
        }
        throw new DirectoryNotFoundException(
            $"--from '{from}' is neither a run folder (run.json), a checkpoint folder (config.json + ema.safetensors), a saved model (.zip) nor a DiT/MaskDiT checkpoint (.pt, .safetensors).");
    }

    /// <summary>True for the files of the reference implementations: .pt, .pth (torch.save) and .safetensors.</summary>
    public static bool IsReferenceFile(string path) =>
        new[] { ".pt", ".pth", ".safetensors" }.Contains(Path.GetExtension(path).ToLowerInvariant());

    private static IReadOnlyList<string>? ClassNamesOf(RunFolder run) =>
        run.LoadSettings().Data is "embedded" or "fashion-mnist" ? FashionMnist.ClassNames : null;
}
