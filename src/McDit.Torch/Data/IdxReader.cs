using System.Buffers.Binary;
using System.IO.Compression;

namespace McDit.Torch.Data;

/// <summary>Unsigned 8-bit images read from an IDX file: <see cref="Count"/> images of <see cref="Rows"/>×<see cref="Columns"/> pixels.</summary>
/// <param name="Pixels">Pixels, image after image, each row-major; length Count·Rows·Columns.</param>
/// <param name="Count">Number of images N.</param>
/// <param name="Rows">Image height.</param>
/// <param name="Columns">Image width.</param>
public sealed record IdxImages(byte[] Pixels, int Count, int Rows, int Columns);

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format): a big-endian header <c>00 00 type ndim</c>, ndim big-endian
/// uint32 sizes, then the data. Supported: uint8 images (magic <c>0x00000803</c>, [N, rows, cols]) and uint8 labels
/// (magic <c>0x00000801</c>, [N]). Gzip-compressed input is recognised by its <c>1f 8b</c> magic; anything else is read as plain.
/// </summary>
/// <remarks>
/// The header is validated before anything is allocated: item count at most <see cref="MaxItems"/>, image sides at most
/// <see cref="MaxSide"/>, total size at most <see cref="Array.MaxLength"/> bytes. The data must be exactly as long as the
/// header says. Every error names the input and says what was expected.
/// </remarks>
public static class IdxReader
{
    /// <summary>Magic number of an IDX file of uint8 values with 3 dimensions (images).</summary>
    public const int ImagesMagic = 0x00000803;
    /// <summary>Magic number of an IDX file of uint8 values with 1 dimension (labels).</summary>
    public const int LabelsMagic = 0x00000801;
    /// <summary>Largest item count accepted in a header.</summary>
    public const int MaxItems = 10_000_000;
    /// <summary>Largest image height or width accepted in a header.</summary>
    public const int MaxSide = 4096;

    /// <summary>Reads a uint8 image file (gzip or plain) from <paramref name="path"/>.</summary>
    public static IdxImages ReadImages(string path)
    {
        using var stream = OpenFile(path);
        return ReadImages(stream, path);
    }

    /// <summary>Reads uint8 images (gzip or plain) from <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public static IdxImages ReadImages(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Read(stream, name, ImagesMagic, "IDX uint8 images [N, rows, cols]", (input, header) =>
        {
            int count = header[0], rows = header[1], cols = header[2];
            CheckCount(name, count);
            if (rows < 1 || rows > MaxSide || cols < 1 || cols > MaxSide)
                throw new InvalidDataException(
                    $"{name}: image size {rows}×{cols} in the IDX header is out of range; expected 1 to {MaxSide} pixels per side.");
            long size = (long)count * rows * cols;
            if (size > Array.MaxLength)
                throw new InvalidDataException(
                    $"{name}: {count} images of {rows}×{cols} make {size} bytes, more than the {Array.MaxLength} bytes one array can hold.");
            var pixels = ReadBody(input, name, (int)size, 4 + 4 * header.Length);
            return new IdxImages(pixels, count, rows, cols);
        });
    }

    /// <summary>Reads a uint8 label file (gzip or plain) from <paramref name="path"/>.</summary>
    public static byte[] ReadLabels(string path)
    {
        using var stream = OpenFile(path);
        return ReadLabels(stream, path);
    }

    /// <summary>Reads uint8 labels (gzip or plain) from <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public static byte[] ReadLabels(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Read(stream, name, LabelsMagic, "IDX uint8 labels [N]", (input, header) =>
        {
            CheckCount(name, header[0]);
            return ReadBody(input, name, header[0], 4 + 4 * header.Length);
        });
    }

    /// <summary>
    /// Reads an image file and its label file into a <see cref="LabeledImageSet"/> (one channel), checking that both
    /// hold the same number of items and that every label is below the number of <paramref name="classNames"/>.
    /// </summary>
    public static LabeledImageSet ReadLabeledImages(string imagesPath, string labelsPath, IReadOnlyList<string> classNames)
    {
        var images = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath);
        return Combine(images, imagesPath, labels, labelsPath, classNames);
    }

    internal static LabeledImageSet Combine(IdxImages images, string imagesName, byte[] labels, string labelsName,
        IReadOnlyList<string> classNames)
    {
        if (labels.Length != images.Count)
            throw new InvalidDataException(
                $"{labelsName} holds {labels.Length} labels but {imagesName} holds {images.Count} images; expected the same count.");
        var ints = new int[labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= classNames.Count)
                throw new InvalidDataException(
                    $"{labelsName}: label {labels[i]} at item {i} is out of range; expected 0 to {classNames.Count - 1}.");
            ints[i] = labels[i];
        }
        return new LabeledImageSet(images.Pixels, ints, 1, images.Rows, images.Columns, classNames);
    }

    static FileStream OpenFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    static T Read<T>(Stream stream, string name, int expectedMagic, string what, Func<Stream, int[], T> body)
    {
        Span<byte> head = stackalloc byte[4];
        int got = ReadAtMost(stream, head[..2]);
        bool gzip = got == 2 && head[0] == 0x1f && head[1] == 0x8b;
        // Put the two sniffed bytes back in front of the rest of the stream.
        Stream input = new PrefixedStream(head[..got].ToArray(), stream);
        if (gzip) input = new GZipStream(input, CompressionMode.Decompress, leaveOpen: false);
        try
        {
            got = ReadAtMost(input, head);
            if (got < 4)
                throw new InvalidDataException(
                    $"{name}: truncated file: expected an IDX header of at least 4 bytes, found {got}.");
            int magic = BinaryPrimitives.ReadInt32BigEndian(head);
            if (magic != expectedMagic)
                throw new InvalidDataException(
                    $"{name}: bad magic number 0x{magic:x8}; expected 0x{expectedMagic:x8} ({what}){(gzip ? " inside the gzip data" : "")}.");
            int dims = expectedMagic & 0xff;
            var sizeBytes = new byte[4 * dims];
            got = ReadAtMost(input, sizeBytes);
            if (got < sizeBytes.Length)
                throw new InvalidDataException(
                    $"{name}: truncated file: expected a {4 + sizeBytes.Length}-byte IDX header, found {4 + got} bytes.");
            var header = new int[dims];
            for (int d = 0; d < dims; d++)
            {
                uint v = BinaryPrimitives.ReadUInt32BigEndian(sizeBytes.AsSpan(4 * d));
                header[d] = v > int.MaxValue ? -1 : (int)v;
            }
            return body(input, header);
        }
        catch (InvalidDataException e) when (gzip && !e.Message.StartsWith(name, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{name}: corrupt gzip data: {e.Message}", e);
        }
        finally
        {
            if (gzip) input.Dispose();
        }
    }

    static void CheckCount(string name, int count)
    {
        if (count < 0 || count > MaxItems)
            throw new InvalidDataException(
                $"{name}: item count {(count < 0 ? "over 2^31" : count.ToString())} in the IDX header is out of range; expected 0 to {MaxItems}.");
    }

    static byte[] ReadBody(Stream input, string name, int length, int headerLength)
    {
        var data = GC.AllocateUninitializedArray<byte>(length);
        int got = ReadAtMost(input, data);
        if (got < length)
            throw new InvalidDataException(
                $"{name}: truncated file: expected {headerLength + (long)length} bytes (header {headerLength} + data {length}), " +
                $"found {headerLength + (long)got}.");
        Span<byte> extra = stackalloc byte[1];
        if (ReadAtMost(input, extra) > 0)
            throw new InvalidDataException(
                $"{name}: file is longer than its IDX header says; expected exactly {headerLength + (long)length} bytes.");
        return data;
    }

    static int ReadAtMost(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>A read-only stream that returns a few bytes already taken from <c>inner</c>, then the rest of <c>inner</c>.</summary>
    sealed class PrefixedStream(byte[] prefix, Stream inner) : Stream
    {
        int _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_pos < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _pos);
                prefix.AsSpan(_pos, n).CopyTo(buffer);
                _pos += n;
                return n;
            }
            return inner.Read(buffer);
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
