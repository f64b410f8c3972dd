using System.Text;

namespace McDit.MLNet.Latents;

/// <summary>
/// The latent cache file: a header, then one fixed-size record per image.
/// <code>
/// bytes 0..7   "MCDLATC1"
/// int32        format version (1)
/// int64        rows N
/// int32 ×3     latent channels C, height h, width w
/// float64      scaling factor; float64 shift factor (NaN: none)
/// int32        classes K (0: no labels), then K × (int32 byte length, UTF-8 class name)
/// N records    int32 class index (−1: none or missing), C·h·w float32 mean, C·h·w float32 log-variance
/// </code>
/// All numbers little-endian. The file length must equal header + N·record exactly.
/// </summary>
sealed class LatentCacheFile
{
    static readonly byte[] Magic = "MCDLATC1"u8.ToArray();
    const int Version = 1;
    const long RowsOffset = 12;

    public required string Path { get; init; }
    public long Rows { get; init; }
    public int Channels { get; init; }
    public int Height { get; init; }
    public int Width { get; init; }
    public double ScalingFactor { get; init; }
    public double? ShiftFactor { get; init; }
    public string[] ClassNames { get; init; } = Array.Empty<string>();
    public long DataOffset { get; init; }

    public int LatentSize => Channels * Height * Width;
    public long RecordSize => 4 + 8L * LatentSize;

    /// <summary>Writes the header (with N = 0; see <see cref="FinishRows"/>) and returns the data offset.</summary>
    public static void WriteHeader(BinaryWriter w, int channels, int height, int width, double scaling, double? shift, IReadOnlyList<string> classNames)
    {
        w.Write(Magic);
        w.Write(Version);
        w.Write(0L);
        w.Write(channels);
        w.Write(height);
        w.Write(width);
        w.Write(scaling);
        w.Write(shift ?? double.NaN);
        w.Write(classNames.Count);
        foreach (var name in classNames)
        {
            var bytes = Encoding.UTF8.GetBytes(name);
            w.Write(bytes.Length);
            w.Write(bytes);
        }
    }

    /// <summary>Writes one record.</summary>
    public static void WriteRow(BinaryWriter w, int label, ReadOnlySpan<float> mean, ReadOnlySpan<float> logVar)
    {
        w.Write(label);
        foreach (var v in mean) w.Write(v);
        foreach (var v in logVar) w.Write(v);
    }

    /// <summary>Sets the row count in the header of a stream written with <see cref="WriteHeader"/>.</summary>
    public static void FinishRows(Stream stream, long rows)
    {
        long end = stream.Position;
        stream.Position = RowsOffset;
        stream.Write(BitConverter.GetBytes(rows));
        stream.Position = end;
    }

    /// <summary>Reads and checks the header of <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a latent cache, or is truncated or too long; the message names it.</exception>
    public static LatentCacheFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Latent cache '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        using var r = new BinaryReader(stream);
        InvalidDataException Bad(string what) => new($"Latent cache '{path}': {what}.");
        try
        {
            var magic = r.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic)) throw Bad("not a McDit latent cache (expected the magic bytes MCDLATC1)");
            int version = r.ReadInt32();
            if (version != Version) throw Bad($"format version {version}; this version reads {Version}");
            long rows = r.ReadInt64();
            int c = r.ReadInt32(), h = r.ReadInt32(), w = r.ReadInt32();
            if (rows < 0 || c < 1 || h < 1 || w < 1 || (long)c * h * w > 1 << 26)
                throw Bad($"invalid header: {rows} rows of [{c}, {h}, {w}] latents");
            double scaling = r.ReadDouble(), shift = r.ReadDouble();
            if (!double.IsFinite(scaling) || scaling == 0) throw Bad($"invalid scaling factor {scaling}");
            int classes = r.ReadInt32();
            if (classes < 0 || classes > 1 << 20) throw Bad($"invalid class count {classes}");
            var names = new string[classes];
            for (int i = 0; i < classes; i++)
            {
                int length = r.ReadInt32();
                if (length < 0 || length > 1 << 16) throw Bad($"class name {i} has an invalid length {length}");
                var bytes = r.ReadBytes(length);
                if (bytes.Length != length) throw new EndOfStreamException();
                names[i] = Encoding.UTF8.GetString(bytes);
            }
            var file = new LatentCacheFile
            {
                Path = path, Rows = rows, Channels = c, Height = h, Width = w, ScalingFactor = scaling,
                ShiftFactor = double.IsNaN(shift) ? null : shift, ClassNames = names, DataOffset = stream.Position,
            };
            long expected = file.DataOffset + rows * file.RecordSize;
            if (stream.Length != expected)
                throw Bad($"{(stream.Length < expected ? "truncated" : "too long")}: the header says {rows} rows of {file.RecordSize} bytes, " +
                    $"{expected} bytes in all, but the file has {stream.Length} bytes");
            return file;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"Latent cache '{path}': truncated header ({stream.Length} bytes).", e);
        }
    }
}
