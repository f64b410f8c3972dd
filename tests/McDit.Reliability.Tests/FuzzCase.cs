namespace McDit.Reliability.Tests;

/// <summary>What a damaged input must produce.</summary>
internal enum Expect
{
    /// <summary>A named error (the damage must be detected).</summary>
    Error,
    /// <summary>Either a named error or a clean load (damage that may be harmless, such as a flipped pixel).</summary>
    ErrorOrLoad,
    /// <summary>A clean load (for example resume passing over a damaged checkpoint to an intact one).</summary>
    Load,
}

/// <summary>One fuzz case: how the host loads it (<see cref="Kind"/>), the damaged file or folder, and what must happen.</summary>
internal sealed record FuzzCase(string Kind, string Path, string Name, Expect Expect)
{
    /// <summary>Bytes of the input (file, or every file of a folder), for the memory bound.</summary>
    public long Bytes => File.Exists(Path) ? new FileInfo(Path).Length
        : Directory.Exists(Path) ? Directory.GetFiles(Path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;
}

/// <summary>What the host reported for a case.</summary>
internal sealed record FuzzResult(FuzzCase Case, string Status, long PeakBytes, double Seconds, string Type, string Message);
