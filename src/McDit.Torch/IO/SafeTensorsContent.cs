using TorchSharp;

namespace McDit.Torch.IO;

/// <summary>
/// The tensors and metadata loaded from a safetensors file. Owns the tensors: disposing it disposes every one
/// (clone a tensor to keep it beyond that).
/// </summary>
public sealed class SafeTensorsContent : IDisposable
{
    readonly Dictionary<string, torch.Tensor> _tensors;
    bool _disposed;

    internal SafeTensorsContent(SafeTensorsHeader header, Dictionary<string, torch.Tensor> tensors)
    {
        Header = header;
        _tensors = tensors;
    }

    /// <summary>The validated header the tensors were read from.</summary>
    public SafeTensorsHeader Header { get; }

    /// <summary>The tensors by name, enumerated in name order.</summary>
    public IReadOnlyDictionary<string, torch.Tensor> Tensors
    {
        get { ObjectDisposedException.ThrowIf(_disposed, this); return _tensors; }
    }

    /// <summary>The <c>__metadata__</c> map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _tensors.Values) t.Dispose();
    }
}
