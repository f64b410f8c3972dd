using System.Security.Cryptography;
using System.Text.Json;
using McDit.Torch.IO;

namespace McDit.Torch.Training;

/// <summary>
/// <c>manifest.json</c> of a checkpoint folder: every other file's name, size and SHA-256, written last, after every file
/// is complete on disk. A folder whose manifest is missing or does not match its files (truncated, half-written, bit
/// flips) is not a usable checkpoint.
/// </summary>
public static class CheckpointManifest
{
    /// <summary>The manifest's file name.</summary>
    public const string FileName = "manifest.json";
    /// <summary>The format tag inside the manifest.</summary>
    public const string CurrentFormat = "mcdit-checkpoint-manifest-1";

    /// <summary>One file of the manifest.</summary>
    /// <param name="Name">File name inside the folder (no path).</param>
    /// <param name="Size">Size in bytes.</param>
    /// <param name="Sha256">SHA-256 of the content, lower-case hex.</param>
    public sealed record Entry(string Name, long Size, string Sha256);

    /// <summary>What manifest.json holds.</summary>
    /// <param name="Format">Always <see cref="CurrentFormat"/>.</param>
    /// <param name="Files">The files, ordered by name (ordinal).</param>
    public sealed record Content(string Format, IReadOnlyList<Entry> Files);

    /// <summary>Writes the manifest of every file now in <paramref name="folder"/> (atomically).</summary>
    public static void Write(string folder)
    {
        var files = Directory.GetFiles(folder).Select(Path.GetFileName).OfType<string>()
            .Where(n => n != FileName && !n.StartsWith('.')).OrderBy(n => n, StringComparer.Ordinal)
            .Select(n => Describe(Path.Combine(folder, n))).ToList();
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(new Content(CurrentFormat, files), Checkpoint.Json));
    }

    /// <summary>
    /// Checks that <paramref name="folder"/> has a manifest, that it lists <paramref name="required"/>, and that every file
    /// it lists exists with its size and checksum. Returns the manifest.
    /// </summary>
    /// <exception cref="InvalidDataException">The manifest is missing or damaged, or a file does not match; the message names the file.</exception>
    public static Content Verify(string folder, params string[] required)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new InvalidDataException($"{folder} has no {FileName}: the checkpoint was not completely written (or by a McDit older than checksummed checkpoints).");
        var manifest = JsonFile.Read<Content>(path, Checkpoint.Json);
        if (manifest.Format != CurrentFormat)
            throw new InvalidDataException($"{path} has format '{manifest.Format}'; this version reads '{CurrentFormat}'.");
        if (manifest.Files is null || manifest.Files.Any(f => f is null || string.IsNullOrEmpty(f.Name) || f.Sha256 is null))
            throw new InvalidDataException($"{path} is damaged: an entry lacks its name or checksum.");
        foreach (var name in required)
            if (!manifest.Files.Any(f => f.Name == name))
                throw new InvalidDataException($"{path} does not list {name}; the checkpoint is incomplete.");
        foreach (var entry in manifest.Files)
        {
            // Names are bare file names: a manifest must not point outside its folder.
            if (entry.Name != Path.GetFileName(entry.Name) || entry.Name is "." or ".." || entry.Name == FileName)
                throw new InvalidDataException($"{path} lists '{entry.Name}', which is not a file of the checkpoint folder.");
            var file = Path.Combine(folder, entry.Name);
            if (!File.Exists(file))
                throw new InvalidDataException($"{file} is missing; the manifest lists it ({entry.Size:N0} bytes).");
            long size = new FileInfo(file).Length;
            if (size != entry.Size)
                throw new InvalidDataException($"{file} is {size:N0} bytes; the manifest says {entry.Size:N0} (the file is truncated or damaged).");
            if (!string.Equals(Hash(file), entry.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"{file} does not match its checksum in {FileName}: the file is damaged.");
        }
        return manifest;
    }

    static Entry Describe(string file) => new(Path.GetFileName(file), new FileInfo(file).Length, Hash(file));

    static string Hash(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
