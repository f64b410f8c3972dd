using McDit.MLNet.Generation;
using McDit.Torch.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.Cli.Runs;

/// <summary>Finds a generator for <c>--from</c>: a run folder (model.zip, else its latest checkpoint) or a checkpoint folder.</summary>
public static class ModelSource
{
    /// <summary>Loads the generator; <paramref name="description"/> says what was loaded.</summary>
    public static McDitModel Load(MLContext ml, string from, string device, out string description)
    {
        var run = new RunFolder(from);
        if (run.HasRun)
        {
            if (File.Exists(run.ModelFile))
            {
                var loaded = ml.Model.Load(run.ModelFile, out _);
                description = run.ModelFile;
                return Find(loaded) ?? throw new InvalidDataException($"{run.ModelFile} holds no McDit generator.");
            }
            var latest = run.Checkpoints.Latest ?? throw new InvalidOperationException($"Run '{run.Path}' has neither model.zip nor a checkpoint yet.");
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
        if (File.Exists(from) && from.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
        {
            description = from;
            return Find(ml.Model.Load(from, out _)) ?? throw new InvalidDataException($"{from} holds no McDit generator.");
        }
        throw new DirectoryNotFoundException(
            $"--from '{from}' is neither a run folder (run.json), a checkpoint folder (config.json + ema.safetensors) nor a saved model (.zip).");
    }

    private static IReadOnlyList<string>? ClassNamesOf(RunFolder run) =>
        run.LoadSettings().Data is "embedded" or "fashion-mnist" ? FashionMnist.ClassNames : null;

    private static McDitModel? Find(ITransformer model) => model switch
    {
        McDitModel m => m,
        TransformerChain<ITransformer> chain => chain.Reverse().Select(Find).FirstOrDefault(m => m is not null),
        _ => null,
    };
}
