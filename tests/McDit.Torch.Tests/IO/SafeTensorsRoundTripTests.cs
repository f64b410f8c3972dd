using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.IO;

public class SafeTensorsRoundTripTests
{
    public SafeTensorsRoundTripTests() => TorchBackend.EnsureInitialized();

    public static IEnumerable<object[]> DTypes() => new[]
    {
        "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
    }.Select(d => new object[] { d });

    static readonly long[][] Shapes = { Array.Empty<long>(), new long[] { 0 }, new long[] { 5 }, new long[] { 2, 3, 4 }, new long[] { 2, 0, 3 } };

    static ScalarType TypeOf(string dtype) => dtype switch
    {
        "F64" => ScalarType.Float64, "F32" => ScalarType.Float32, "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16, "I64" => ScalarType.Int64, "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16, "I8" => ScalarType.Int8, "U8" => ScalarType.Byte, "BOOL" => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    static Tensor Random(ScalarType type, long[] shape, Generator g)
    {
        if (type is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16)
            return torch.randn(shape, generator: g).to(type);
        var (lo, hi) = type switch
        {
            ScalarType.Bool => (0L, 2L),
            ScalarType.Byte => (0L, 256L),
            ScalarType.Int8 => (-128L, 128L),
            _ => (-30000L, 30000L),
        };
        return torch.randint(lo, hi, shape, dtype: ScalarType.Int64, generator: g).to(type);
    }

    static byte[] RawBytes(Tensor t) => t.numel() == 0 ? Array.Empty<byte>() : t.cpu().contiguous().bytes.ToArray();

    static void AssertSame(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(RawBytes(expected), RawBytes(actual));
        Assert.True(expected.cpu().eq(actual.cpu()).all().item<bool>());
    }

    [Theory]
    [MemberData(nameof(DTypes))]
    public void EveryDTypeRoundTripsWithItsShapesAndMetadata(string dtype)
    {
        var g = new Generator(42);
        var type = TypeOf(dtype);
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < Shapes.Length; i++) tensors[$"t{i}"] = Random(type, Shapes[i], g);
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcödé \"quoted\" <tag> +1" };

        var bytes = SafeTensors.ToBytes(tensors, meta);
        using var loaded = SafeTensors.Load(bytes, "roundtrip");
        Assert.Equal(tensors.Keys.OrderBy(k => k, StringComparer.Ordinal), loaded.Tensors.Keys);
        foreach (var (name, t) in tensors) AssertSame(t, loaded.Tensors[name]);
        Assert.Equal(meta.OrderBy(kv => kv.Key), loaded.Metadata.OrderBy(kv => kv.Key));
        foreach (var e in loaded.Header.Tensors) Assert.Equal(dtype, e.DType);
    }

    [Fact]
    public void MixedDTypesRoundTripThroughAFileAndChunkedCopies()
    {
        using var dir = new TempFolder();
        var g = new Generator(7);
        var tensors = new Dictionary<string, Tensor>
        {
            ["weight"] = torch.randn(new long[] { 17, 13 }, generator: g),
            ["weight_t"] = torch.randn(new long[] { 13, 17 }, generator: g).t(),           // not contiguous
            ["grad"] = torch.randn(new long[] { 9 }, generator: g).requires_grad_(true),   // requires grad
            ["half"] = torch.randn(new long[] { 3, 33 }, generator: g).to(ScalarType.BFloat16),
            ["ids"] = torch.arange(0, 100, dtype: ScalarType.Int64),
            ["mask"] = torch.arange(0, 37, dtype: ScalarType.Int64).remainder(3).eq(0),
            ["bytes"] = torch.arange(0, 255, dtype: ScalarType.Int64).to(ScalarType.Byte),
            ["scalar"] = torch.tensor(3.5),
        };
        var path = dir.File("sub/model.safetensors");
        SafeTensors.Save(path, tensors);
        var fileBytes = File.ReadAllBytes(path);
        Assert.Equal(SafeTensors.ToBytes(tensors), fileBytes);
        // Tiny chunks exercise the piecewise copy between streams and tensors.
        Assert.Equal(fileBytes, SafeTensors.ToBytes(tensors, null, chunkBytes: 16));

        using (var fromFile = SafeTensors.Load(path))
            foreach (var (name, t) in tensors) AssertSame(t.detach(), fromFile.Tensors[name]);
        using (var chunked = SafeTensors.Load(fileBytes, "chunked", null, chunkBytes: 16))
            foreach (var (name, t) in tensors) AssertSame(t.detach(), chunked.Tensors[name]);
        using (var stream = new CountingStream(new MemoryStream(fileBytes), seekable: false))
        using (var fromStream = SafeTensors.Load(stream, "pipe"))
            foreach (var (name, t) in tensors) AssertSame(t.detach(), fromStream.Tensors[name]);
        using (var noMeta = SafeTensors.Load(fileBytes, "x")) Assert.Empty(noMeta.Metadata);
    }

    [Fact]
    public void BytesAreDeterministicAlignedAndIndependentOfInsertionOrder()
    {
        var g = new Generator(3);
        var a = torch.randn(new long[] { 3 }, generator: g);
        var b = torch.arange(0, 5, dtype: ScalarType.Int64);
        var c = torch.ones(new long[] { 7 }, dtype: ScalarType.Bool);
        var d = torch.randn(new long[] { 2, 2 }, generator: g).to(ScalarType.Float16);
        var first = SafeTensors.ToBytes(new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b, ["c"] = c, ["d"] = d },
            new Dictionary<string, string> { ["x"] = "1", ["y"] = "2" });
        var second = SafeTensors.ToBytes(new Dictionary<string, Tensor> { ["d"] = d, ["c"] = c, ["b"] = b, ["a"] = a },
            new Dictionary<string, string> { ["y"] = "2", ["x"] = "1" });
        Assert.Equal(first, second);
        Assert.Equal(first, SafeTensors.ToBytes(new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b, ["c"] = c, ["d"] = d },
            new Dictionary<string, string> { ["x"] = "1", ["y"] = "2" }));

        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(first);
        Assert.Equal(0, n % 8);
        var json = Encoding.UTF8.GetString(first, 8, (int)n);
        Assert.StartsWith("{", json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(new[] { "__metadata__", "a", "b", "c", "d" }, doc.RootElement.EnumerateObject().Select(p => p.Name));
        foreach (var p in doc.RootElement.EnumerateObject().Skip(1))
        {
            long begin = p.Value.GetProperty("data_offsets")[0].GetInt64();
            int size = p.Value.GetProperty("dtype").GetString() switch { "I64" => 8, "F32" => 4, "F16" => 2, _ => 1 };
            Assert.Equal(0, begin % size);
        }
        // Data order: largest elements first, so b (I64) starts the buffer.
        Assert.Equal(0, doc.RootElement.GetProperty("b").GetProperty("data_offsets")[0].GetInt64());
    }

    [Fact]
    public void ReadHeaderReadsOnlyTheHeader()
    {
        using var dir = new TempFolder();
        var path = dir.File("m.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor>
        {
            ["w"] = torch.zeros(new long[] { 64, 4, 2, 2 }),
            ["y"] = torch.zeros(new long[] { 3 }, dtype: ScalarType.Int64),
        }, new Dictionary<string, string> { ["config"] = "{}" });

        var header = SafeTensors.ReadHeader(path);
        Assert.Equal(new[] { "w", "y" }, header.Tensors.Select(t => t.Name));
        Assert.True(header.TryGetTensor("w", out var w));
        Assert.Equal("F32", w!.DType);
        Assert.Equal(ScalarType.Float32, w.ScalarType);
        Assert.Equal(new long[] { 64, 4, 2, 2 }, w.Shape);
        Assert.Equal(64 * 4 * 2 * 2 * 4, w.ByteLength);
        Assert.Equal("{}", header.Metadata["config"]);
        Assert.Equal(64 * 16 * 4 + 24, header.DataLength);

        using var counting = new CountingStream(File.OpenRead(path), seekable: true);
        var again = SafeTensors.ReadHeader(counting, "counted");
        Assert.Equal(8 + again.HeaderLength, counting.BytesRead);
        Assert.Equal(8 + again.HeaderLength, counting.Position);
    }

    [Fact]
    public void BadInputToTheWriterIsRejectedBeforeWriting()
    {
        using var dir = new TempFolder();
        var path = dir.File("keep.safetensors");
        File.WriteAllBytes(path, new byte[] { 1 });
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, new Dictionary<string, Tensor> { [""] = torch.zeros(1) }));
        Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, new Dictionary<string, Tensor> { ["__metadata__"] = torch.zeros(1) }));
        var complex = Assert.Throws<ArgumentException>(() => SafeTensors.Save(path,
            new Dictionary<string, Tensor> { ["z"] = torch.zeros(new long[] { 2 }, dtype: ScalarType.ComplexFloat32) }));
        Assert.Contains("'z'", complex.Message);
        Assert.Equal(new byte[] { 1 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void AnEmptyDictionaryRoundTrips()
    {
        var bytes = SafeTensors.ToBytes(new Dictionary<string, Tensor>());
        using var loaded = SafeTensors.Load(bytes, "empty");
        Assert.Empty(loaded.Tensors);
        Assert.Empty(loaded.Metadata);
    }
}
