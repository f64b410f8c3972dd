using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.IO;

public class SafeTensorsMalformedTests(ITestOutputHelper output)
{
    static SafeTensorsMalformedTests() => TorchBackend.EnsureInitialized();

    const string T = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    /// <summary>Case name → (file bytes, tensor the message must name or null, fragment of the message).</summary>
    static readonly Dictionary<string, (byte[] Bytes, string? Tensor, string Fragment)> Cases = new()
    {
        ["empty file"] = (Array.Empty<byte>(), null, "at least 8 bytes"),
        ["seven bytes"] = (new byte[7], null, "at least 8 bytes"),
        ["huge header length"] = (RawSafeTensors.Build("{}", 0, ulong.MaxValue), null, "at most 100000000"),
        ["header length over 100 MB"] = (RawSafeTensors.Build("{}", 0, 100_000_001), null, "at most 100000000"),
        ["header length past the end"] = (RawSafeTensors.Build("{}", 0, 3), null, "that follow the prefix"),
        ["zero header length"] = (RawSafeTensors.Build("", 0), null, "valid JSON"),
        ["not json"] = (RawSafeTensors.Build("hello", 0), null, "valid JSON"),
        ["truncated json"] = (RawSafeTensors.Build("{\"a\":" + T[..20], 8), null, "valid JSON"),
        ["trailing comma"] = (RawSafeTensors.Build("{\"a\":" + T + ",}", 8), null, "valid JSON"),
        ["json array"] = (RawSafeTensors.Build("[]", 0), null, "JSON object, found an array"),
        ["json string"] = (RawSafeTensors.Build("\"x\"", 0), null, "JSON object, found a string"),
        ["json null"] = (RawSafeTensors.Build("null", 0), null, "JSON object, found null"),
        ["invalid utf-8"] = (RawSafeTensors.Build(new byte[] { (byte)'{', 0xC3, 0x28, (byte)'}' }, Array.Empty<byte>()), null, "UTF-8"),
        ["deep nesting"] = (RawSafeTensors.Build("{\"__metadata__\":" + new string('[', 500) + new string(']', 500) + "}", 0), null, "valid JSON"),
        ["unknown dtype"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2), "a", "one of F64, F32"),
        ["lower-case dtype"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "\"f32\""),
        ["dtype not a string"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "\"dtype\" to be a string"),
        ["negative shape"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "a", "non-negative integers, found -2"),
        ["fractional shape"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8), "a", "non-negative integers"),
        ["shape beyond int64"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8), "a", "non-negative integers"),
        ["overflowing element count"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "a", "fits in 64 bits"),
        ["overflowing byte size"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8), "a", "fits in 64 bits"),
        ["overflowing strides with a zero"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0), "a", "fits in 64 bits"),
        ["shape not an array"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8), "a", "\"shape\" to be an array"),
        ["offsets out of range"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}", 8), "a", "within the 8-byte data buffer"),
        ["offsets reversed"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), "a", "begin ≤ end"),
        ["negative offset"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8), "a", "non-negative integers, found -8"),
        ["one offset"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), "a", "[begin, end]"),
        ["size mismatch"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "a", "expected 12 bytes"),
        ["overlapping"] = (RawSafeTensors.Build("{\"a\":" + T + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "b", "overlapping tensor 'a'"),
        ["hole"] = (RawSafeTensors.Build("{\"a\":" + T + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16), "b", "without holes"),
        ["hole at start"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "a", "start at offset 0"),
        ["trailing bytes"] = (RawSafeTensors.Build("{\"a\":" + T + "}", 12), null, "4 trailing bytes"),
        ["data missing"] = (RawSafeTensors.Build("{\"a\":" + T + "}", 4), "a", "within the 4-byte data buffer"),
        ["duplicate tensor"] = (RawSafeTensors.Build("{\"a\":" + T + ",\"a\":" + T + "}", 8), "a", "unique tensor names"),
        ["duplicate metadata key"] = (RawSafeTensors.Build("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"a\":" + T + "}", 8), null, "unique \"__metadata__\" keys"),
        ["duplicate metadata"] = (RawSafeTensors.Build("{\"__metadata__\":{},\"__metadata__\":{},\"a\":" + T + "}", 8), null, "at most one"),
        ["metadata not strings"] = (RawSafeTensors.Build("{\"__metadata__\":{\"k\":1},\"a\":" + T + "}", 8), null, "to be a string, found a number"),
        ["metadata not an object"] = (RawSafeTensors.Build("{\"__metadata__\":[],\"a\":" + T + "}", 8), null, "object of strings"),
        ["empty name"] = (RawSafeTensors.Build("{\"\":" + T + "}", 8), "", "non-empty tensor name"),
        ["entry not an object"] = (RawSafeTensors.Build("{\"a\":[1,2]}", 0), "a", "found an array"),
        ["missing field"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "a", "missing \"data_offsets\""),
        ["unknown field"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8), "a", "found field \"x\""),
        ["duplicate field"] = (RawSafeTensors.Build("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "found it twice"),
        ["bool byte 2"] = (RawSafeTensors.Build(Encoding.UTF8.GetBytes("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}"), new byte[] { 1, 0, 2 }), "m", "0 or 1, found 2 at element 2"),
    };

    public static IEnumerable<object[]> CaseNames() => Cases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MalformedInputIsRejectedWithAMessageThatSaysWhere(string caseName)
    {
        var (bytes, tensor, fragment) = Cases[caseName];
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Load(bytes, "case.safetensors"));
        Assert.Equal("case.safetensors", e.SourceName);
        Assert.Contains("case.safetensors", e.Message);
        Assert.Equal(tensor, e.TensorName);
        if (tensor is not null) Assert.Contains($"'{tensor}'", e.Message);
        Assert.Contains(fragment, e.Message);
        Assert.IsAssignableFrom<IOException>(e);

        // The header-only reader agrees, except for faults that only the data shows.
        if (caseName != "bool byte 2")
            Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.ReadHeader(new MemoryStream(bytes), "case.safetensors"));
    }

    [Fact]
    public void FileErrorsNameThePath()
    {
        using var dir = new TempFolder();
        var path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, Cases["size mismatch"].Bytes);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Load(path));
        Assert.Contains(path, e.Message);
        e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.ReadHeader(path));
        Assert.Contains(path, e.Message);
    }

    [Theory]
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")] // lone surrogate
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   \t\n")]  // trailing white space
    [InlineData("{\"__metadata__\":{},\"a\":{\"dtype\":\"F32\",\"shape\":[1e0, 2],\"data_offsets\":[0,8]}}")]
    public void OddButPossiblyValidHeadersLoadOrFailCleanly(string json)
    {
        LoadsOrRejects(RawSafeTensors.Build(json, 8), json);
    }

    [Fact]
    public void ZeroSizeTensorsMayShareAnOffset()
    {
        var json = "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},\"a\":" + T +
                   ",\"e2\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[8,8]},\"e0\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}";
        using var c = SafeTensors.Load(RawSafeTensors.Build(json, 8), "zeros");
        Assert.Equal(new long[] { 3, 0 }, c.Tensors["e2"].shape);
        Assert.Equal(4, c.Tensors.Count);
    }

    /// <summary>
    /// Truncates, bit-flips, rewrites and splices a valid file a few thousand times (fixed seed): every variant must
    /// load or throw <see cref="SafeTensorsFormatException"/>, and nothing else.
    /// </summary>
    [Fact]
    public void FuzzedFilesLoadOrThrowTheFormatExceptionOnly()
    {
        var g = new Generator(11);
        var valid = SafeTensors.ToBytes(new Dictionary<string, Tensor>
        {
            ["w"] = torch.randn(new long[] { 2, 3 }, generator: g),
            ["ids"] = torch.arange(0, 3, dtype: ScalarType.Int64),
            ["mask"] = torch.arange(0, 5, dtype: ScalarType.Int64).remainder(2).eq(0),
            ["h"] = torch.randn(new long[] { 4 }, generator: g).to(ScalarType.BFloat16),
            ["empty"] = torch.zeros(new long[] { 0, 2 }, dtype: ScalarType.Byte),
            ["s"] = torch.tensor(2.5, dtype: ScalarType.Float64),
        }, new Dictionary<string, string> { ["config"] = "{\"depth\": 2}" });
        var other = SafeTensors.ToBytes(new Dictionary<string, Tensor> { ["x"] = torch.ones(new long[] { 3 }, dtype: ScalarType.Int16) });
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);

        var rng = new Random(20240611);
        int loaded = 0, rejected = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 4000; i++)
        {
            var bytes = (byte[])valid.Clone();
            string how;
            switch (i % 6)
            {
                case 0: // truncate
                    Array.Resize(ref bytes, rng.Next(bytes.Length));
                    how = $"truncated to {bytes.Length}";
                    break;
                case 1: // flip bits, mostly in the header
                {
                    int flips = 1 + rng.Next(4);
                    for (int k = 0; k < flips; k++)
                    {
                        int at = rng.Next(3) > 0 ? rng.Next(headerEnd) : rng.Next(bytes.Length);
                        bytes[at] ^= (byte)(1 << rng.Next(8));
                    }
                    how = $"{flips} bit flips";
                    break;
                }
                case 2: // rewrite one header character with a digit, sign, quote or bracket
                {
                    const string alphabet = "0123456789-.,:[]{}\"e ";
                    int at = 8 + rng.Next(headerEnd - 8);
                    bytes[at] = (byte)alphabet[rng.Next(alphabet.Length)];
                    how = $"header byte {at} rewritten";
                    break;
                }
                case 3: // splice: copy a range of this file or another valid file over a random place
                {
                    var from = rng.Next(2) == 0 ? valid : other;
                    int len = 1 + rng.Next(Math.Min(64, from.Length));
                    int src = rng.Next(from.Length - len + 1), dst = rng.Next(bytes.Length - len + 1);
                    Array.Copy(from, src, bytes, dst, len);
                    how = $"spliced {len} bytes from {src} to {dst}";
                    break;
                }
                case 4: // insert or delete a range
                {
                    int at = rng.Next(bytes.Length), len = 1 + rng.Next(16);
                    var list = bytes.ToList();
                    if (rng.Next(2) == 0) list.InsertRange(at, Enumerable.Range(0, len).Select(_ => (byte)rng.Next(256)));
                    else list.RemoveRange(at, Math.Min(len, bytes.Length - at));
                    bytes = list.ToArray();
                    how = $"inserted/deleted {len} bytes at {at}";
                    break;
                }
                default: // tamper with the length prefix
                {
                    ulong n = (ulong)(headerEnd - 8);
                    ulong[] choices = { n + 1, n - 1, n + 8, 0, (ulong)bytes.Length, ulong.MaxValue, (ulong)rng.NextInt64(), 1UL << 32 };
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes, choices[rng.Next(choices.Length)]);
                    how = "length prefix changed";
                    break;
                }
            }
            if (LoadsOrRejects(bytes, $"case {i}: {how}")) loaded++; else rejected++;
        }
        output.WriteLine($"{loaded} loaded, {rejected} rejected in {clock.ElapsedMilliseconds} ms");
        Assert.True(loaded > 50, $"only {loaded} variants loaded");
        Assert.True(rejected > 1000, $"only {rejected} variants were rejected");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"fuzzing took {clock.Elapsed}");
    }

    /// <summary>True when the bytes load, false when they are rejected with the format exception; fails otherwise.</summary>
    static bool LoadsOrRejects(byte[] bytes, string what)
    {
        try
        {
            using var c = SafeTensors.Load(bytes, "fuzz");
            foreach (var (name, t) in c.Tensors)
            {
                Assert.True(c.Header.TryGetTensor(name, out var e));
                Assert.Equal(e!.ShapeArray, t.shape);
            }
            return true;
        }
        catch (SafeTensorsFormatException e)
        {
            Assert.Contains("fuzz", e.Message);
            return false;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: expected a load or a SafeTensorsFormatException, got {e.GetType().Name}: {e.Message}");
            return false;
        }
    }
}
