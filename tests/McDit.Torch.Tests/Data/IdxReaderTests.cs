using System.Buffers.Binary;
using System.IO.Compression;
using McDit.Torch.Data;
using Xunit;

namespace McDit.Torch.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mcdit-idx-" + Guid.NewGuid().ToString("N"));

    public IdxReaderTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static (byte[] Pixels, byte[] Labels) Sample(int count, int rows, int cols)
    {
        var pixels = new byte[count * rows * cols];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7 + 3);
        var labels = new byte[count];
        for (int i = 0; i < count; i++) labels[i] = (byte)(i % 3);
        return (pixels, labels);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RoundTripsImagesAndLabels(bool gzip)
    {
        var (pixels, labels) = Sample(5, 3, 4);
        string ip = Path.Combine(_dir, "img"), lp = Path.Combine(_dir, "lbl");
        IdxWriter.WriteImages(ip, pixels, 5, 3, 4, gzip);
        IdxWriter.WriteLabels(lp, labels, gzip);

        var head = File.ReadAllBytes(ip)[..2];
        Assert.Equal(gzip, head[0] == 0x1f && head[1] == 0x8b);
        var images = IdxReader.ReadImages(ip);
        Assert.Equal((5, 3, 4), (images.Count, images.Rows, images.Columns));
        Assert.Equal(pixels, images.Pixels);
        Assert.Equal(labels, IdxReader.ReadLabels(lp));

        var set = IdxReader.ReadLabeledImages(ip, lp, new[] { "a", "b", "c" });
        Assert.Equal(5, set.Count);
        Assert.Equal((1, 3, 4), (set.Channels, set.Height, set.Width));
        Assert.Equal(new[] { 0, 1, 2, 0, 1 }, set.Labels);
        Assert.Equal(pixels[12..24], set.GetImage(1).ToArray());
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void PlainFileLayoutIsTheIdxFormat()
    {
        var (pixels, _) = Sample(2, 2, 3);
        var path = Path.Combine(_dir, "plain");
        IdxWriter.WriteImages(path, pixels, 2, 2, 3, gzip: false);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(16 + 12, bytes.Length);
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3 }, bytes[..16]);
        Assert.Equal(pixels, bytes[16..]);
    }

    [Fact]
    public void ReadsFromNonSeekableStreams()
    {
        var (pixels, labels) = Sample(4, 2, 2);
        var path = Path.Combine(_dir, "lbl.gz");
        IdxWriter.WriteLabels(path, labels, gzip: true);
        using var stream = new ForwardOnlyStream(File.ReadAllBytes(path));
        Assert.Equal(labels, IdxReader.ReadLabels(stream, "forward-only"));
        Assert.NotNull(pixels);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TruncatedFileSaysExpectedAndFoundBytes(bool gzip)
    {
        var (pixels, _) = Sample(3, 4, 4);
        var full = Path.Combine(_dir, "full");
        IdxWriter.WriteImages(full, pixels, 3, 4, 4, gzip: false);
        var cut = File.ReadAllBytes(full)[..(16 + 40)];
        var path = Path.Combine(_dir, gzip ? "cut.gz" : "cut");
        File.WriteAllBytes(path, gzip ? Gzip(cut) : cut);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("expected 64 bytes", e.Message);
        Assert.Contains("found 56", e.Message);
    }

    [Fact]
    public void TruncatedHeaderAndTrailingBytesAreErrors()
    {
        var path = Path.Combine(_dir, "short");
        File.WriteAllBytes(path, new byte[] { 0, 0, 8, 1, 0, 0 });
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);

        var longer = Path.Combine(_dir, "longer");
        File.WriteAllBytes(longer, new byte[] { 0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3 });
        e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(longer));
        Assert.Contains(longer, e.Message);
        Assert.Contains("expected exactly 10 bytes", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BadMagicNamesFileAndExpectedMagic(bool gzip)
    {
        var path = Path.Combine(_dir, "labels-as-images");
        IdxWriter.WriteLabels(path, new byte[] { 1, 2 }, gzip);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("0x00000801", e.Message);
        Assert.Contains("expected 0x00000803", e.Message);

        var junk = Path.Combine(_dir, "junk.txt");
        File.WriteAllText(junk, "hello world, not an idx file");
        e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(junk));
        Assert.Contains(junk, e.Message);
        Assert.Contains("expected 0x00000801", e.Message);
    }

    [Theory]
    [InlineData(1, 5000, 28, "image size")]
    [InlineData(1, 28, 0, "image size")]
    [InlineData(20_000_000, 28, 28, "item count")]
    [InlineData(-1, 28, 28, "item count")]
    [InlineData(10_000_000, 4096, 4096, "more than")]
    public void OversizedHeadersAreRejectedBeforeAllocating(int count, int rows, int cols, string what)
    {
        var header = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, IdxReader.ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), cols);
        var path = Path.Combine(_dir, "huge");
        File.WriteAllBytes(path, header);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void CorruptGzipAndMissingFileNameTheInput()
    {
        var path = Path.Combine(_dir, "corrupt.gz");
        File.WriteAllBytes(path, new byte[] { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff });
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(path));
        Assert.Contains(path, e.Message);

        var missing = Path.Combine(_dir, "nope.gz");
        var f = Assert.Throws<FileNotFoundException>(() => IdxReader.ReadImages(missing));
        Assert.Contains(missing, f.Message);
    }

    [Fact]
    public void LabelCountMismatchAndOutOfRangeLabelsAreErrors()
    {
        var (pixels, _) = Sample(3, 2, 2);
        string ip = Path.Combine(_dir, "i"), lp = Path.Combine(_dir, "l");
        IdxWriter.WriteImages(ip, pixels, 3, 2, 2, gzip: false);
        IdxWriter.WriteLabels(lp, new byte[] { 0, 1 }, gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabeledImages(ip, lp, new[] { "a", "b" }));
        Assert.Contains(lp, e.Message);
        Assert.Contains(ip, e.Message);

        IdxWriter.WriteLabels(lp, new byte[] { 0, 1, 7 }, gzip: false);
        e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabeledImages(ip, lp, new[] { "a", "b" }));
        Assert.Contains(lp, e.Message);
        Assert.Contains("label 7", e.Message);
    }

    static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    sealed class ForwardOnlyStream(byte[] data) : Stream
    {
        int _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            // Hand out at most 3 bytes per call to exercise short reads.
            int n = Math.Min(Math.Min(count, 3), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
