using McDit.Torch.Models;
using TorchSharp;

namespace McDit.Torch.Interop;

/// <summary>
/// Weights read from a reference checkpoint, converted to McDit: the shape inferred from them and the tensors under
/// McDit's names (MaskDiT's one-hot label Linear already turned into a table with a zero null row). Owns the tensors.
/// </summary>
public sealed class ReferenceModel : IDisposable
{
    readonly Dictionary<string, torch.Tensor> _tensors;
    MaskedDiffusionTransformer? _network;

    internal ReferenceModel(DiffusionTransformerConfig config, Dictionary<string, torch.Tensor> tensors, ReferenceFormat format,
        string source, string part, PickleObject? args, MaskedDiffusionTransformer? network = null)
    {
        _network = network;
        Config = config;
        _tensors = tensors;
        Format = format;
        Source = source;
        Part = part;
        Arguments = args;
    }

    /// <summary>The McDit shape of the network.</summary>
    public DiffusionTransformerConfig Config { get; }
    /// <summary>The network's state dict under McDit's names, float32 on the CPU.</summary>
    public IReadOnlyDictionary<string, torch.Tensor> Tensors => _tensors;
    /// <summary>Which reference the weights came from.</summary>
    public ReferenceFormat Format { get; }
    /// <summary>The file.</summary>
    public string Source { get; }
    /// <summary>What was taken from it: "state dict", "ema" or "model" (of a training checkpoint).</summary>
    public string Part { get; }
    /// <summary>The training checkpoint's <c>args</c> (an argparse Namespace, as data), or null.</summary>
    public PickleObject? Arguments { get; }

    /// <summary>
    /// A network of <see cref="Config"/> holding these weights (checked: names, shapes, dtypes, finite values), in eval mode;
    /// the caller owns it. The first call hands over the network <see cref="ReferenceCheckpoint.Read"/> already built.
    /// </summary>
    public MaskedDiffusionTransformer CreateNetwork()
    {
        if (_network is { } built)
        {
            _network = null;
            return built;
        }
        var model = new MaskedDiffusionTransformer(Config);
        try
        {
            Training.Checkpoint.LoadInto(model, _tensors, $"{Source} ({Part})");
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Disposes the tensors (and the network, unless <see cref="CreateNetwork"/> handed it over).</summary>
    public void Dispose()
    {
        _network?.Dispose();
        _network = null;
        foreach (var t in _tensors.Values) t.Dispose();
        _tensors.Clear();
    }
}
