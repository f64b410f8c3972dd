using System.Globalization;
using McDit.Serve;
using Microsoft.ML;

namespace McDit.Cli.Runs;

/// <summary>The generation page's model for <c>--from</c>, loaded the way <see cref="ModelSource"/> loads it for <c>mcdit sample</c>.</summary>
public static class ServedModel
{
    /// <summary>
    /// A run folder is followed as it trains (its newest checkpoint, then model.zip when the run ends); a model zip or a
    /// checkpoint folder is loaded once, now, so that a bad <c>--from</c> fails at once.
    /// </summary>
    public static GeneratorSource For(string from, string device)
    {
        var run = new RunFolder(from);
        return run.HasRun ? ForRun(run, device) : GeneratorSource.Fixed(Load(from, device));
    }

    /// <summary>A run folder's current model: model.zip when there is one, else its newest checkpoint (none yet: the page waits).</summary>
    public static GeneratorSource ForRun(RunFolder run, string device) => new(
        () =>
        {
            var zip = new FileInfo(run.ModelFile);
            if (zip.Exists) return string.Create(CultureInfo.InvariantCulture, $"{zip.FullName} {zip.Length} {zip.LastWriteTimeUtc.Ticks}");
            return run.HasRun ? run.Checkpoints.Latest : null;
        },
        () => Load(run.Path, device),
        $"The run in {run.Path} has no checkpoint yet; the page loads one as soon as training writes it.");

    static LoadedGenerator Load(string from, string device)
    {
        var model = ModelSource.Load(new MLContext(seed: 0), from, device, out var loadedFrom);
        var path = Path.GetFullPath(loadedFrom);
        var kind = path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) ? ModelOriginKind.ModelZip : ModelOriginKind.Checkpoint;
        // `mcdit sample --from` this loads the same weights: a run's model.zip through the run, a checkpoint by its folder.
        var cliFrom = kind == ModelOriginKind.ModelZip && new RunFolder(from).HasRun ? Path.GetFullPath(from) : path;
        return new LoadedGenerator(model, cliFrom, new ModelOrigin(kind, path, device));
    }
}
