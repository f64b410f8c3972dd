using System.Buffers.Binary;
using System.IO.Compression;

namespace McDit.Torch.Data;

/// <summary>Writes uint8 IDX files (images <c>0x00000803</c>, labels <c>0x00000801</c>), plain or gzip-compressed.</summary>
/// <remarks>Files are written atomically: to a temporary file in the same folder, then moved over the target.</remarks>
public static class IdxWriter
{
    /// <summary>Writes <paramref name="count"/> images of <paramref name="rows"/>×<paramref name="columns"/> uint8 pixels.</summary>
    /// <param name="path">Target file; overwritten if it exists.</param>
    /// <param name="pixels">Pixels, image after image, row-major; length count·rows·columns.</param>
    /// <param name="count">Number of images.</param>
    /// <param name="rows">Image height, 1 to <see cref="IdxReader.MaxSide"/>.</param>
    /// <param name="columns">Image width, 1 to <see cref="IdxReader.MaxSide"/>.</param>
    /// <param name="gzip">Compress with gzip (as the original Fashion-MNIST <c>.gz</c> files).</param>
    public static void WriteImages(string path, ReadOnlySpan<byte> pixels, int count, int rows, int columns, bool gzip)
    {
        if (count < 0 || count > IdxReader.MaxItems)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Expected 0 to {IdxReader.MaxItems} images.");
        if (rows < 1 || rows > IdxReader.MaxSide || columns < 1 || columns > IdxReader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(rows), $"Image size {rows}×{columns}: expected 1 to {IdxReader.MaxSide} per side.");
        if (pixels.Length != (long)count * rows * columns)
            throw new ArgumentException(
                $"Expected {(long)count * rows * columns} pixels for {count} images of {rows}×{columns}, got {pixels.Length}.", nameof(pixels));
        Span<byte> header = stackalloc byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, IdxReader.ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], count);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], rows);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], columns);
        Write(path, header, pixels, gzip);
    }

    /// <summary>Writes uint8 labels.</summary>
    /// <param name="path">Target file; overwritten if it exists.</param>
    /// <param name="labels">One byte per item.</param>
    /// <param name="gzip">Compress with gzip.</param>
    public static void WriteLabels(string path, ReadOnlySpan<byte> labels, bool gzip)
    {
        if (labels.Length > IdxReader.MaxItems)
            throw new ArgumentException($"Expected at most {IdxReader.MaxItems} labels, got {labels.Length}.", nameof(labels));
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, IdxReader.LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], labels.Length);
        Write(path, header, labels, gzip);
    }

    static void Write(string path, ReadOnlySpan<byte> header, ReadOnlySpan<byte> body, bool gzip)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var headerBytes = header.ToArray();
        var bodyBytes = body.ToArray();
        IO.AtomicFile.Write(path, file =>
        {
            if (gzip)
            {
                using var z = new GZipStream(file, CompressionLevel.SmallestSize, leaveOpen: true);
                z.Write(headerBytes);
                z.Write(bodyBytes);
            }
            else
            {
                file.Write(headerBytes);
                file.Write(bodyBytes);
            }
        });
    }
}
