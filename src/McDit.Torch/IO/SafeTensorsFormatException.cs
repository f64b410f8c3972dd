namespace McDit.Torch.IO;

/// <summary>
/// A safetensors file (or buffer, or stream) is malformed. The message names the source, the tensor concerned
/// (if any) and what was expected.
/// </summary>
/// <remarks>
/// Derives from <see cref="IOException"/> (<see cref="InvalidDataException"/> is sealed), so callers that handle
/// unreadable files as I/O errors handle malformed ones too.
/// </remarks>
public sealed class SafeTensorsFormatException : IOException
{
    /// <summary>The file path or source name that was being read.</summary>
    public string SourceName { get; }

    /// <summary>The tensor whose entry or data is at fault, or null when the fault is not in one tensor.</summary>
    public string? TensorName { get; }

    /// <summary>Creates the exception.</summary>
    /// <param name="sourceName">The file path or source name that was being read.</param>
    /// <param name="tensorName">The tensor at fault, or null.</param>
    /// <param name="problem">What was expected and what was found.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public SafeTensorsFormatException(string sourceName, string? tensorName, string problem, Exception? inner = null)
        : base(Compose(sourceName, tensorName, problem), inner)
    {
        SourceName = sourceName;
        TensorName = tensorName;
    }

    static string Compose(string source, string? tensor, string problem) =>
        tensor is null
            ? $"Safetensors '{source}' is malformed: {problem}"
            : $"Safetensors '{source}', tensor '{tensor}' is malformed: {problem}";
}
