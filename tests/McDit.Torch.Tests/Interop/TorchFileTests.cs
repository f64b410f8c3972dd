using System.IO.Compression;
using System.Text;
using McDit.Torch.Interop;
using McDit.Torch.Tests.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Interop;

/// <summary>The torch.save reader and writer on their own: round trips, refused pickles, truncated and damaged archives.</summary>
public sealed class TorchFileTests : IDisposable
{
    readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    static Dictionary<string, Tensor> SmallStateDict()
    {
        using var g = new Generator(3, torch.CPU);
        return new Dictionary<string, Tensor>
        {
            ["a.weight"] = torch.randn(new long[] { 3, 5 }, generator: g),
            ["a.bias"] = torch.randn(new long[] { 3 }, generator: g),
            ["steps"] = torch.tensor(new long[] { 7, -1, long.MaxValue }),
            ["half"] = torch.randn(new long[] { 4 }, generator: g).to_type(ScalarType.Float16),
            ["flags"] = torch.tensor(new[] { true, false }),
            ["scalar"] = torch.tensor(2.5f),
        };
    }

    [Fact]
    public void NestedObjectsRoundTrip()
    {
        var sd = SmallStateDict();
        var args = new PickleObject("argparse", "Namespace");
        args.Attributes["model"] = "DiT-XL/2";
        args.Attributes["lr"] = 1e-4;
        args.Attributes["betas"] = new PickleTuple(new object?[] { 0.9, 0.999 });
        var root = new PickleDict();
        root["model"] = sd;
        root["ema"] = sd; // the same tensors: stored once
        root["args"] = args;
        root["step"] = 123456789012L;
        root["list"] = new List<object?> { 1L, "two", null, true };
        var path = _dir.File("round.pt");
        TorchFile.Save(path, root);

        using (var zip = ZipFile.OpenRead(path))
        {
            Assert.Equal(sd.Count, zip.Entries.Count(e => e.FullName.StartsWith("archive/data/", StringComparison.Ordinal)));
            Assert.Contains(zip.Entries, e => e.FullName == "archive/version");
            Assert.All(zip.Entries, e => Assert.Equal(e.Length, e.CompressedLength)); // stored, as PyTorch
        }
        using var content = TorchFile.Load(path);
        var back = Assert.IsType<PickleDict>(content.Root);
        foreach (var part in new[] { "model", "ema" })
        {
            var d = Assert.IsType<PickleDict>(back[part]);
            Assert.True(d.IsOrdered);
            Assert.Equal(sd.Keys, d.Keys.Cast<string>());
            foreach (var (k, t) in sd)
            {
                var u = Assert.IsAssignableFrom<Tensor>(d[k]);
                Assert.Equal(t.dtype, u.dtype);
                Assert.True(TestTensors.Same(t, u), k);
            }
        }
        var a = Assert.IsType<PickleObject>(back["args"]);
        Assert.Equal("DiT-XL/2", a.Attributes["model"]);
        Assert.Equal(1e-4, a.Attributes["lr"]);
        Assert.Equal(123456789012L, back["step"]);
        Assert.Equal(new object?[] { 1L, "two", null, true }, Assert.IsType<List<object?>>(back["list"]));
    }

    [Fact]
    public void DataRecordsAreAlignedTo64Bytes()
    {
        var path = _dir.File("aligned.pt");
        TorchFile.Save(path, SmallStateDict());
        var bytes = File.ReadAllBytes(path);
        int found = 0;
        for (int i = 0; i + 30 < bytes.Length; i++)
        {
            if (bytes[i] != 'P' || bytes[i + 1] != 'K' || bytes[i + 2] != 3 || bytes[i + 3] != 4) continue;
            int nameLength = BitConverter.ToUInt16(bytes, i + 26), extra = BitConverter.ToUInt16(bytes, i + 28);
            Assert.Equal(0, (i + 30 + nameLength + extra) % 64);
            found++;
        }
        Assert.True(found >= 8, $"{found} local headers");
    }

    /// <summary>A torch.save archive around hand-made pickle bytes.</summary>
    byte[] Archive(byte[] pickle, params (string Name, byte[] Data)[] records)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] data)
            {
                var e = zip.CreateEntry(name, CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(data);
            }
            Add("archive/data.pkl", pickle);
            foreach (var (n, d) in records) Add(n, d);
            Add("archive/version", Encoding.ASCII.GetBytes("3\n"));
        }
        return ms.ToArray();
    }

    static byte[] Pickle(string ops) => Encoding.Latin1.GetBytes(ops);

    [Theory]
    [InlineData("\u0080\u0002cos\nsystem\nX\u0004\u0000\u0000\u0000echo\u0085R.", "os.system")]
    [InlineData("\u0080\u0002cposix\nsystem\nX\u0004\u0000\u0000\u0000echo\u0085R.", "posix.system")]
    [InlineData("\u0080\u0004\u0095\u0010\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u008c\u0008builtins\u008c\u0004eval\u0093X\u0001\u0000\u0000\u00001\u0085R.", "builtins.eval")]
    [InlineData("\u0080\u0002(X\u0001\u0000\u0000\u00001ibuiltins\nexec\n.", "builtins.exec")]
    [InlineData("\u0080\u0002ctorch\nload\n)R.", "torch.load")]
    [InlineData("\u0080\u0002csubprocess\nPopen\n)\u0081.", "subprocess.Popen")]
    [InlineData("\u0080\u0002\u0082\u0001.", "copyreg extension code")]
    public void ForbiddenGlobalsAreRefusedByName(string ops, string global)
    {
        var path = _dir.File("evil.pt");
        File.WriteAllBytes(path, Archive(Pickle(ops)));
        var e = Assert.Throws<UnsafePickleException>(() => TorchFile.Load(path));
        Assert.Equal(global, e.Global);
        Assert.Contains(global, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void StorageClassesCannotBeCalled()
    {
        var path = _dir.File("call.pt");
        File.WriteAllBytes(path, Archive(Pickle("\u0080\u0002ctorch\nFloatStorage\n)R.")));
        Assert.Throws<UnsafePickleException>(() => TorchFile.Load(path));
    }

    [Fact]
    public void DeepAndCyclicPicklesAreBounded()
    {
        // 100,000 nested lists and a list that contains itself: no stack overflow, no endless walk.
        var deep = new StringBuilder("\u0080\u0002");
        for (int i = 0; i < 100_000; i++) deep.Append("](");
        deep.Append('N');
        for (int i = 0; i < 100_000; i++) deep.Append('e');
        deep.Append('.');
        var path = _dir.File("deep.pt");
        File.WriteAllBytes(path, Archive(Pickle(deep.ToString())));
        using (var content = TorchFile.Load(path)) Assert.IsType<List<object?>>(content.Root);

        File.WriteAllBytes(path, Archive(Pickle("\u0080\u0002]q\u0000h\u0000a.")));
        using (var content = TorchFile.Load(path))
        {
            var list = Assert.IsType<List<object?>>(content.Root);
            Assert.Same(list, list[0]);
        }
    }

    [Fact]
    public void StoragesMustMatchTheirRecordsAndViewsTheirStorage()
    {
        // ('storage', torch.FloatStorage, '0', 'cpu', 4) viewed as [2, 3]: 6 elements of a 4-element storage.
        const string rebuild = "\u0080\u0002ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0004tQK\u0000K\u0002K\u0003\u0086K\u0003K\u0001\u0086\u0089)tR.";
        var path = _dir.File("view.pt");
        File.WriteAllBytes(path, Archive(Pickle(rebuild), ("archive/data/0", new byte[16])));
        var e = Assert.Throws<TorchFormatException>(() => TorchFile.Load(path));
        Assert.Contains("storage '0'", e.Message);

        File.WriteAllBytes(path, Archive(Pickle(rebuild.Replace("K\u0004tQ", "K\u0006tQ")), ("archive/data/0", new byte[16])));
        e = Assert.Throws<TorchFormatException>(() => TorchFile.Load(path));
        Assert.Contains("archive/data/0", e.Message);
        Assert.Contains("holds 16 bytes", e.Message);

        File.WriteAllBytes(path, Archive(Pickle(rebuild.Replace("K\u0004tQ", "K\u0006tQ"))));
        e = Assert.Throws<TorchFormatException>(() => TorchFile.Load(path));
        Assert.Contains("is missing", e.Message);

        File.WriteAllBytes(path, Archive(Pickle(rebuild.Replace("K\u0004tQ", "K\u0006tQ")), ("archive/data/0", new byte[24])));
        using var ok = TorchFile.Load(path);
        Assert.Equal(new long[] { 2, 3 }, Assert.IsAssignableFrom<Tensor>(ok.Root).shape);
    }

    [Fact]
    public void TruncatedFilesGiveANamedError()
    {
        var path = _dir.File("full.pt");
        TorchFile.Save(path, SmallStateDict());
        var bytes = File.ReadAllBytes(path);
        var cut = _dir.File("cut.pt");
        foreach (int length in new[] { 0, 3, 4, 100, bytes.Length / 3, bytes.Length / 2, bytes.Length - 30, bytes.Length - 1 })
        {
            File.WriteAllBytes(cut, bytes[..length]);
            var e = Assert.ThrowsAny<TorchFormatException>(() => TorchFile.Load(cut));
            Assert.Contains(cut, e.Message);
        }
    }

    [Fact]
    public void FlippedBytesAreCaughtByTheCrc()
    {
        var path = _dir.File("full.pt");
        TorchFile.Save(path, SmallStateDict());
        var bytes = File.ReadAllBytes(path);
        // Flip a byte inside every record's data: the data records and the pickle.
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        int checkedRecords = 0;
        for (int i = 0; i + 4 < bytes.Length; i++)
        {
            if (bytes[i] != 'P' || bytes[i + 1] != 'K' || bytes[i + 2] != 3 || bytes[i + 3] != 4) continue;
            int nameLength = BitConverter.ToUInt16(bytes, i + 26), extra = BitConverter.ToUInt16(bytes, i + 28);
            int size = BitConverter.ToInt32(bytes, i + 22);
            string name = Encoding.UTF8.GetString(bytes, i + 30, nameLength);
            if (size == 0 || name.EndsWith("version", StringComparison.Ordinal) || name.EndsWith("byteorder", StringComparison.Ordinal)) continue;
            var damaged = (byte[])bytes.Clone();
            damaged[i + 30 + nameLength + extra + size / 2] ^= 0x20;
            var bad = _dir.File("bad.pt");
            File.WriteAllBytes(bad, damaged);
            var e = Assert.ThrowsAny<TorchFormatException>(() => TorchFile.Load(bad));
            Assert.Contains(name, e.Message);
            checkedRecords++;
        }
        Assert.True(checkedRecords >= 7);
    }

    [Fact]
    public void OtherFilesAreNamedForWhatTheyAre()
    {
        var path = _dir.File("legacy.pt");
        File.WriteAllBytes(path, new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 });
        Assert.Contains("legacy torch.save format", Assert.Throws<TorchFormatException>(() => TorchFile.Load(path)).Message);

        File.WriteAllText(path, "hello, world");
        Assert.Contains("not a torch.save archive", Assert.Throws<TorchFormatException>(() => TorchFile.Load(path)).Message);

        using (var zip = ZipFile.Open(path = _dir.File("script.pt"), ZipArchiveMode.Create))
        {
            zip.CreateEntry("model/constants.pkl");
            zip.CreateEntry("model/code/__torch__.py");
        }
        Assert.Contains("TorchScript", Assert.Throws<TorchFormatException>(() => TorchFile.Load(path)).Message);
    }
}
