using TorchSharp;

namespace McDit.Torch.Interop;

/// <summary>
/// What a <c>.pt</c> file holds once loaded: the unpickled object (<see cref="Root"/>, with every tensor a TorchSharp
/// tensor on the CPU) and the tensors, which this object owns: disposing it disposes them.
/// </summary>
public sealed class TorchFileContent : IDisposable
{
    readonly List<torch.Tensor> _tensors;
    bool _disposed;

    internal TorchFileContent(object? root, List<torch.Tensor> tensors, string source)
    {
        Root = root;
        _tensors = tensors;
        Source = source;
    }

    /// <summary>The object the file holds: a <see cref="PickleDict"/> (a state dict, or a checkpoint dict), a list, a tensor, ….</summary>
    public object? Root { get; }

    /// <summary>The file it was read from.</summary>
    public string Source { get; }

    /// <summary>Every tensor in <see cref="Root"/>.</summary>
    public IReadOnlyList<torch.Tensor> Tensors
    {
        get { ObjectDisposedException.ThrowIf(_disposed, this); return _tensors; }
    }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _tensors) t.Dispose();
    }
}
