namespace McDit.Torch.Interop;

/// <summary>
/// A PyTorch file (<c>torch.save</c> zip archive, its pickle, or a reference state dict inside it) is truncated,
/// damaged or not what was expected. The message names the file, the part at fault (a zip entry, a pickle offset, a
/// tensor) and what was expected.
/// </summary>
/// <remarks>Derives from <see cref="IOException"/>, like <see cref="IO.SafeTensorsFormatException"/>.</remarks>
public class TorchFormatException : IOException
{
    /// <summary>The file or source that was being read.</summary>
    public string SourceName { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="sourceName">The file or source that was being read.</param>
    /// <param name="problem">What is wrong and what was expected.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public TorchFormatException(string sourceName, string problem, Exception? inner = null)
        : base($"PyTorch file '{sourceName}': {problem}", inner)
    {
        SourceName = sourceName;
    }
}

/// <summary>
/// The pickle inside a PyTorch file asks for a Python global (a function or class) that the restricted unpickler does
/// not allow, for example <c>os.system</c>. Nothing from the file was run: the unpickler builds only tensors, storages,
/// dicts, OrderedDicts, lists, tuples and plain scalars (and argparse Namespaces as inert data).
/// </summary>
public sealed class UnsafePickleException : TorchFormatException
{
    /// <summary>The refused global, as <c>module.name</c>.</summary>
    public string Global { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="sourceName">The file or source that was being read.</param>
    /// <param name="global">The refused global, as <c>module.name</c>.</param>
    /// <param name="offset">Byte offset of the opcode in the pickle.</param>
    public UnsafePickleException(string sourceName, string global, long offset)
        : base(sourceName, $"its pickle asks for the Python global '{global}' (at byte {offset}), which is not allowed: only tensors, " +
            "storages, dicts, OrderedDicts, lists, tuples, plain scalars and argparse Namespaces are loaded, and no code from the file runs. " +
            "The file is not a plain checkpoint or state dict; if you trust it, re-save its state dict with torch.save(model.state_dict(), path) or as .safetensors.")
    {
        Global = global;
    }
}
