namespace McDit.Torch.IO;

/// <summary>
/// The validated header of a safetensors file: every tensor's entry and the free-form metadata, read without the
/// tensor data (see <see cref="SafeTensors.ReadHeader(string)"/>).
/// </summary>
public sealed class SafeTensorsHeader
{
    readonly Dictionary<string, SafeTensorsEntry> _byName;

    internal SafeTensorsHeader(string sourceName, IReadOnlyList<SafeTensorsEntry> tensors,
        IReadOnlyDictionary<string, string> metadata, long headerLength, long dataLength)
    {
        SourceName = sourceName; Tensors = tensors; Metadata = metadata;
        HeaderLength = headerLength; DataLength = dataLength;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file path or source name the header was read from.</summary>
    public string SourceName { get; }

    /// <summary>The tensor entries, ordered by name (ordinal).</summary>
    public IReadOnlyList<SafeTensorsEntry> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Length in bytes of the JSON header (the value of the 8-byte prefix).</summary>
    public long HeaderLength { get; }

    /// <summary>Length in bytes of the data buffer that follows the header.</summary>
    public long DataLength { get; }

    /// <summary>Finds a tensor's entry by name.</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="entry">The entry, when found.</param>
    /// <returns>True when the header has a tensor of that name.</returns>
    public bool TryGetTensor(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SafeTensorsEntry? entry) =>
        _byName.TryGetValue(name, out entry);
}
