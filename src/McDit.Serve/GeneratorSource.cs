using McDit.MLNet.Generation;

namespace McDit.Serve;

/// <summary>
/// Where the generation page's model comes from. The model is (re)loaded whenever <see cref="Version"/> changes, so a
/// run that is still training is sampled from its newest checkpoint; a fixed model never changes.
/// </summary>
public sealed class GeneratorSource
{
    private readonly Func<string?> _version;
    private readonly Func<LoadedGenerator> _load;

    /// <summary>Creates a source.</summary>
    /// <param name="version">Says which model is current (a file and its time, a checkpoint folder), or null while there is none yet.</param>
    /// <param name="load">Loads the current model.</param>
    /// <param name="notReadyMessage">Shown on the page while <paramref name="version"/> is null.</param>
    public GeneratorSource(Func<string?> version, Func<LoadedGenerator> load, string notReadyMessage = "There is no model to sample from yet.")
    {
        _version = version ?? throw new ArgumentNullException(nameof(version));
        _load = load ?? throw new ArgumentNullException(nameof(load));
        NotReadyMessage = notReadyMessage;
    }

    /// <summary>A source that always serves <paramref name="generator"/>.</summary>
    public static GeneratorSource Fixed(LoadedGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        return new GeneratorSource(() => "fixed", () => generator) { Preloaded = generator };
    }

    /// <summary>A model already loaded (a fixed source's), served from the first request on.</summary>
    internal LoadedGenerator? Preloaded { get; private init; }

    /// <summary>The current model's identity, or null while there is none.</summary>
    public string? Version => _version();

    /// <summary>Loads the current model.</summary>
    public LoadedGenerator Load() => _load();

    /// <summary>What the page says while there is no model.</summary>
    public string NotReadyMessage { get; }
}

/// <summary>A loaded generator and how to load it again from the command line and from C#.</summary>
/// <param name="Model">The generator.</param>
/// <param name="CliFrom">The <c>--from</c> value that loads this same model with <c>mcdit sample</c>.</param>
/// <param name="Origin">What was loaded: a saved ML.NET model (.zip) or a checkpoint folder, and its path.</param>
public sealed record LoadedGenerator(McDitModel Model, string CliFrom, ModelOrigin Origin);

/// <summary>The file or folder a generator was loaded from.</summary>
/// <param name="Kind">A saved model zip or a checkpoint folder.</param>
/// <param name="Path">Its full path.</param>
/// <param name="Device">The device it was loaded for (cpu, cuda, auto).</param>
public sealed record ModelOrigin(ModelOriginKind Kind, string Path, string Device = "auto");

/// <summary>Kinds of <see cref="ModelOrigin"/>.</summary>
public enum ModelOriginKind
{
    /// <summary>A model saved with <c>MLContext.Model.Save</c> (a run's model.zip).</summary>
    ModelZip,
    /// <summary>A training checkpoint folder (config.json + ema.safetensors).</summary>
    Checkpoint,
}
