using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using McDit.Torch.Training;
using Xunit;
using Xunit.Abstractions;
using static McDit.Reliability.Tests.Mutations;

namespace McDit.Reliability.Tests;

/// <summary>The intact files every fuzz case starts from, written once by the host.</summary>
public sealed class FuzzSeeds : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "mcdit-fuzz-" + Guid.NewGuid().ToString("N"));
    public string Seeds => Path.Combine(Root, "seeds");
    public FuzzSeeds() => HostRunner.Seed(Seeds);
    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, true);
    }
}

/// <summary>
/// A seeded fuzzer over the files McDit reads: safetensors weights, model zips, checkpoint folders (config.json,
/// state.json, optimizer and RNG state, weights), checkpoint series (what --resume sees) and image files. Bit flips,
/// truncation, header lengths, huge declared sizes and config values, wrong dtypes and shapes, NaN/Inf. Every case runs
/// in a child process and must end in a named error (or, where the damage can be harmless, a clean load): no crash (a
/// native abort counts), no hang, no NaN output, and a peak memory within 96 MiB plus 16 times the input's size.
/// </summary>
public sealed class FuzzTests : IClassFixture<FuzzSeeds>
{
    static readonly TimeSpan PerCase = TimeSpan.FromSeconds(90);
    const long MemoryAllowance = 96L << 20;
    const int MemoryFactor = 16;

    readonly FuzzSeeds _seeds;
    readonly ITestOutputHelper _log;
    readonly List<FuzzCase> _cases = new();
    static int _counter;

    public FuzzTests(FuzzSeeds seeds, ITestOutputHelper log)
    {
        _seeds = seeds;
        _log = log;
    }

    string Seed(string name) => Path.Combine(_seeds.Seeds, name);

    /// <summary>A fresh, uniquely named path; error messages must contain its id.</summary>
    string NewPath(string category, string name, string extension = "")
    {
        var folder = Path.Combine(_seeds.Root, category);
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, $"c{Interlocked.Increment(ref _counter):D4}-{name}{extension}");
    }

    void AddFile(string kind, string category, string name, string extension, byte[] bytes, Expect expect)
    {
        var path = NewPath(category, name, extension);
        File.WriteAllBytes(path, bytes);
        _cases.Add(new FuzzCase(kind, path, name, expect));
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    /// <summary>A copy of a seed checkpoint with one file changed; <paramref name="reseal"/> rewrites the manifest to match, as a buggy writer would.</summary>
    void AddCheckpoint(string method, string name, string file, Func<byte[], byte[]>? change, bool reseal, Expect expect = Expect.Error)
    {
        var folder = NewPath("checkpoints", name);
        CopyFolder(Seed("checkpoint-" + method), folder);
        var path = Path.Combine(folder, file);
        if (change is null) File.Delete(path);
        else File.WriteAllBytes(path, change(File.ReadAllBytes(path)));
        if (reseal) CheckpointManifest.Write(folder);
        _cases.Add(new FuzzCase("checkpoint", folder, name, expect));
    }

    void Warmup(string kind, string path) => _cases.Add(new FuzzCase(kind, path, "warmup", Expect.Load));

    void RunAndAssert(string what)
    {
        var results = HostRunner.Run(_cases, _seeds.Root, PerCase);
        var failures = new List<string>();
        foreach (var r in results)
        {
            var c = r.Case;
            var id = Path.GetFileName(c.Path).Split('-')[0];
            string? problem = r.Status switch
            {
                "CRASH" or "HANG" or "MEMORY" or "MISSING" => $"{r.Status} {r.Type} {r.Message}",
                "NONFINITE" => "loaded, but produced NaN/Inf",
                "OK" when c.Expect == Expect.Error => "loaded, but the damage should have been detected",
                "ERROR" when c.Expect == Expect.Load => $"failed, but should have loaded: {r.Type}: {r.Message}",
                "ERROR" when r.Type is not ("System.IO.InvalidDataException" or "McDit.Torch.IO.SafeTensorsFormatException") =>
                    $"not a named data error: {r.Type}: {r.Message}",
                "ERROR" when c.Name != "warmup" && !r.Message.Contains(id, StringComparison.Ordinal) => $"the message does not name the input: {r.Message}",
                _ => null,
            };
            long bound = MemoryAllowance + MemoryFactor * c.Bytes;
            if (problem is null && c.Name != "warmup" && r.PeakBytes > bound)
                problem = $"peak memory {r.PeakBytes / 1048576.0:F0} MiB over the bound of {bound / 1048576.0:F0} MiB";
            if (problem is not null) failures.Add($"{Path.GetFileName(c.Path)} ({c.Kind}): {problem}");
        }
        var counted = results.Where(r => r.Case.Name != "warmup").ToList();
        _log.WriteLine($"{what}: {counted.Count} cases, {counted.Count(r => r.Status == "ERROR")} named errors, " +
            $"{counted.Count(r => r.Status == "OK")} clean loads, {failures.Count} failures; largest peak " +
            $"{counted.Max(r => r.PeakBytes) / 1048576.0:F1} MiB, slowest {counted.Max(r => r.Seconds):F2} s");
        foreach (var f in failures.Take(40)) _log.WriteLine("  " + f);
        Assert.True(failures.Count == 0, $"{failures.Count} of {counted.Count} {what} cases failed:\n" + string.Join("\n", failures.Take(40)));
    }

    // ------------------------------------------------------------------ safetensors

    [Fact]
    public void SafeTensorsFiles()
    {
        var seed = File.ReadAllBytes(Seed("weights.safetensors"));
        Warmup("safetensors", Seed("weights.safetensors"));
        var random = Seeds.Random(101);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(seed);
        int headerEnd = 8 + (int)headerLength;
        void Add(string name, byte[] bytes, Expect expect = Expect.Error) => AddFile("safetensors", "safetensors", name, ".safetensors", bytes, expect);

        for (int i = 0; i < 20; i++) Add("bitflip", FlipBits(seed, random, 1 + random.Next(8)), Expect.ErrorOrLoad);
        foreach (var length in new[] { 0, 4, 8, 16, headerEnd - 1, headerEnd, headerEnd + 3, seed.Length / 2, seed.Length - 1, random.Next(seed.Length), random.Next(seed.Length) })
            Add("truncate", Truncate(seed, length));
        foreach (var length in new ulong[] { 0, 1, 7, (ulong)headerLength + 1, (ulong)headerLength - 1, 100_000_001, 1UL << 62, ulong.MaxValue, (ulong)seed.Length })
            Add("header-length", SetHeaderLength(seed, length));

        var (header, _) = SplitSafeTensors(seed);
        var largest = Tensors(header)[0].Name;
        var matrix = Tensors(header).First(t => t.Entry["shape"]!.AsArray().Count == 2 && t.Entry["shape"]![0]!.GetValue<long>() != t.Entry["shape"]![1]!.GetValue<long>()).Name;
        Add("f32-as-i32", EditHeader(seed, h => { foreach (var (_, e) in Tensors(h)) e["dtype"] = "I32"; }));
        Add("f32-as-f16", EditHeader(seed, h => h[largest]!["dtype"] = "F16"));
        Add("unknown-dtype", EditHeader(seed, h => h[largest]!["dtype"] = "F8_E4M3"));
        Add("bool-dtype", EditHeader(seed, h => h[largest]!["dtype"] = "BOOL"));
        Add("huge-shape", EditHeader(seed, h => h[largest]!["shape"] = new JsonArray(1_000_000_000_000, 1_000_000_000_000)));
        Add("huge-1d-shape", EditHeader(seed, h => h[largest]!["shape"] = new JsonArray(1L << 62)));
        Add("negative-shape", EditHeader(seed, h => h[largest]!["shape"] = new JsonArray(-1, 32)));
        Add("transposed", EditHeader(seed, h =>
        {
            var s = h[matrix]!["shape"]!.AsArray();
            h[matrix]!["shape"] = new JsonArray(s[1]!.GetValue<long>(), s[0]!.GetValue<long>());
        }));
        Add("huge-offsets", EditHeader(seed, h => h[largest]!["data_offsets"] = new JsonArray(0, 1L << 62)));
        Add("reversed-offsets", EditHeader(seed, h =>
        {
            var o = h[largest]!["data_offsets"]!.AsArray();
            h[largest]!["data_offsets"] = new JsonArray(o[1]!.GetValue<long>(), o[0]!.GetValue<long>());
        }));
        Add("renamed", EditHeader(seed, h => { var e = h[largest]!; h.Remove(largest); h["not." + largest] = e; }));
        Add("removed", EditHeader(seed, h => h.Remove(largest)));
        Add("metadata-number", EditHeader(seed, h => h["__metadata__"] = 5));
        Add("extra-field", EditHeader(seed, h => h[largest]!["extra"] = 1));
        Add("array-header", JoinSafeTensors("[]"u8.ToArray(), SplitSafeTensors(seed).Data));
        Add("deep-header", JoinSafeTensors(Encoding.UTF8.GetBytes(new string('[', 200) + new string(']', 200)), SplitSafeTensors(seed).Data));
        Add("bad-utf8", JoinSafeTensors(new byte[] { (byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}' }, SplitSafeTensors(seed).Data));
        Add("nan", SetFloat(seed, largest, 0, float.NaN));
        Add("inf", SetFloat(seed, largest, 1, float.PositiveInfinity));
        Add("minus-inf", SetFloat(seed, matrix, 0, float.NegativeInfinity));
        RunAndAssert("safetensors");
    }

    // ------------------------------------------------------------------ model zips

    [Fact]
    public void ModelZips()
    {
        var seedPath = Seed("model.zip");
        var seed = File.ReadAllBytes(seedPath);
        Warmup("zip", seedPath);
        var random = Seeds.Random(202);
        void Add(string name, byte[] bytes, Expect expect = Expect.Error) => AddFile("zip", "zips", name, ".zip", bytes, expect);
        void AddEntries(string name, Func<List<(string Name, byte[] Data)>, IEnumerable<(string, byte[])>> change, Expect expect = Expect.Error)
        {
            var path = NewPath("zips", name, ".zip");
            WriteZip(path, change(ReadZip(seedPath)));
            _cases.Add(new FuzzCase("zip", path, name, expect));
        }
        void AddEntry(string name, string suffix, Func<byte[], byte[]> change, Expect expect = Expect.Error) =>
            AddEntries(name, entries => entries.Select(e => (e.Name, e.Name.EndsWith(suffix, StringComparison.Ordinal) ? change(e.Data) : e.Data)), expect);

        for (int i = 0; i < 20; i++) Add("bitflip", FlipBits(seed, random, 1 + random.Next(8)), Expect.ErrorOrLoad);
        foreach (var length in new[] { 0, 10, 22, seed.Length / 3, seed.Length / 2, seed.Length - 22, seed.Length - 1, random.Next(seed.Length) })
            Add("truncate", Truncate(seed, length));
        foreach (var (name, central, local) in ZipLayout(seed))
        {
            var entry = name.Replace('/', '_');
            Add($"crc-{entry}", Xor(seed, central + 16, 0x01));
            Add($"local-crc-{entry}", Xor(seed, local + 14, 0x01), Expect.ErrorOrLoad); // readers use the central copy; the data is intact
            Add($"huge-size-{entry}", Patch32(seed, central + 24, 0xFFFFFF00));
            Add($"compressed-size-{entry}", Patch32(seed, central + 20, BinaryPrimitives.ReadUInt32LittleEndian(seed.AsSpan(central + 20)) + 1000), Expect.ErrorOrLoad);
            AddEntries($"without-{entry}", entries => entries.Where(e => e.Name != name).Select(e => (e.Name, e.Data)),
                name.EndsWith("Version.txt", StringComparison.Ordinal) || name == "Schema" ? Expect.ErrorOrLoad : Expect.Error); // both optional to ML.NET
        }

        foreach (var (name, edit) in new (string, Func<byte[], byte[]>)[]
        {
            ("depth-1e6", b => EditJson(b, o => o["Model"]!["Depth"] = 1_000_000)),
            ("depth-1e308", b => RawJsonValue(b, "Depth", "1e308")),
            ("depth-fraction", b => RawJsonValue(b, "Depth", "1.5")),
            ("depth-text", b => EditJson(b, o => o["Model"]!["Depth"] = "deep")),
            ("mlp-ratio-1e9", b => EditJson(b, o => o["Model"]!["MlpRatio"] = 1e9)),
            ("decoder-width-1e6", b => EditJson(b, o => o["Model"]!["DecoderHiddenSize"] = 1_000_000)),
            ("input-size-1e5", b => EditJson(b, o => o["Model"]!["InputSize"] = 100_000)),
            ("width-1e8", b => EditJson(b, o => o["Model"]!["HiddenSize"] = 100_000_000)),
            ("classes-max", b => EditJson(b, o => { o["Model"]!["NumClasses"] = int.MaxValue; o["NumberOfClasses"] = int.MaxValue; })),
            ("no-model", b => EditJson(b, o => o.Remove("Model"))),
            ("null-model", b => EditJson(b, o => o["Model"] = null)),
            ("no-depth", b => EditJson(b, o => o["Model"]!.AsObject().Remove("Depth"))),
            ("sampling-steps-1e9", b => EditJson(b, o => o["SamplingSteps"] = 1_000_000_000)),
            ("batch-negative", b => EditJson(b, o => o["BatchSize"] = -1)),
            ("channels-mismatch", b => EditJson(b, o => o["Channels"] = 3)),
            ("format", b => EditJson(b, o => o["Format"] = "something-else")),
            ("device", b => EditJson(b, o => o["Device"] = "quantum")),
            ("sigma-nan", b => EditJson(b, o => o["SigmaMax"] = "NaN")),
            ("truncated-json", b => b[..(b.Length / 2)]),
            ("not-json", b => "\u0000\u0001garbage"u8.ToArray()),
        })
            AddEntry("config-" + name, "config.json", edit);

        foreach (var (name, edit) in new (string, Func<byte[], byte[]>)[]
        {
            ("f32-as-i32", b => EditHeader(b, h => { foreach (var (_, e) in Tensors(h)) e["dtype"] = "I32"; })),
            ("nan", b => SetFloat(b, Tensors(SplitSafeTensors(b).Header)[0].Name, 0, float.NaN)),
            ("inf", b => SetFloat(b, Tensors(SplitSafeTensors(b).Header)[0].Name, 3, float.PositiveInfinity)),
            ("truncated", b => b[..(b.Length / 2)]),
            ("header-length", b => SetHeaderLength(b, 1UL << 40)),
            ("transposed", b => EditHeader(b, h =>
            {
                var m = Tensors(h).First(t => t.Entry["shape"]!.AsArray().Count == 2 && t.Entry["shape"]![0]!.GetValue<long>() != t.Entry["shape"]![1]!.GetValue<long>()).Entry;
                var s = m["shape"]!.AsArray();
                m["shape"] = new JsonArray(s[1]!.GetValue<long>(), s[0]!.GetValue<long>());
            })),
            ("removed-tensor", b => EditHeader(b, h => h.Remove(Tensors(h)[^1].Name))),
        })
            AddEntry("weights-" + name, "model.safetensors", edit);

        foreach (var entry in new[] { "Model.key", "Schema" })
            for (int i = 0; i < 2; i++)
                AddEntry($"{entry}-bitflip", entry, b => FlipBits(b, random, 1 + random.Next(4)), Expect.ErrorOrLoad);
        RunAndAssert("model zip");
    }

    // ------------------------------------------------------------------ checkpoints

    static byte[] State(byte[] b, Action<JsonObject> edit) => EditJson(b, edit);

    /// <summary>Edits rng.cpu's bytes in an optimizer.safetensors.</summary>
    static Func<byte[], byte[]> Rng(Action<Span<byte>> edit) => b => EditTensorBytes(b, "rng.cpu", edit);

    [Fact]
    public void CheckpointFolders()
    {
        var random = Seeds.Random(303);
        foreach (var method in new[] { "DiT", "MaskDiT", "McDiT" })
        {
            Warmup("checkpoint", Seed("checkpoint-" + method));
            foreach (var file in Directory.GetFiles(Seed("checkpoint-" + method)).Select(Path.GetFileName))
            {
                // Damage the manifest does not know about: a bit flip or a cut.
                var expect = file == CheckpointManifest.FileName ? Expect.ErrorOrLoad : Expect.Error;
                AddCheckpoint(method, $"{method}-flip-{file}", file!, b => FlipBits(b, random, 1), reseal: false, expect);
                AddCheckpoint(method, $"{method}-cut-{file}", file!, b => Truncate(b, random.Next(b.Length)), reseal: false);
                if (method == "McDiT") AddCheckpoint(method, $"{method}-without-{file}", file!, null, reseal: false);
            }
        }

        // Damage with a matching manifest, as a faulty writer or a hand edit leaves it: the content checks must catch it.
        foreach (var (name, edit) in new (string, Func<byte[], byte[]>)[]
        {
            ("depth-1e6", b => EditJson(b, o => o["Model"]!["Depth"] = 1_000_000)),
            ("depth-1e308", b => RawJsonValue(b, "Depth", "1e308")),
            ("depth-fraction", b => RawJsonValue(b, "Depth", "2.5")),
            ("depth-text", b => EditJson(b, o => o["Model"]!["Depth"] = "deep")),
            ("depth-3", b => EditJson(b, o => o["Model"]!["Depth"] = 3)),
            ("no-depth", b => EditJson(b, o => o["Model"]!.AsObject().Remove("Depth"))),
            ("mlp-ratio-1e9", b => EditJson(b, o => o["Model"]!["MlpRatio"] = 1e9)),
            ("decoder-width-1e6", b => EditJson(b, o => o["Model"]!["DecoderHiddenSize"] = 1_000_000)),
            ("input-size-65536", b => EditJson(b, o => o["Model"]!["InputSize"] = 65536)),
            ("classes-max", b => EditJson(b, o => o["Model"]!["NumClasses"] = int.MaxValue)),
            ("width-2e9", b => EditJson(b, o => o["Model"]!["HiddenSize"] = 2_000_000_000)),
            ("patch-0", b => EditJson(b, o => o["Model"]!["PatchSize"] = 0)),
            ("channels-1e6", b => RawJsonValue(b, "InChannels", "1000000")),
            ("no-model", b => EditJson(b, o => o.Remove("Model"))),
            ("no-training", b => EditJson(b, o => o.Remove("Training"))),
            ("no-method", b => EditJson(b, o => o["Training"]!.AsObject().Remove("Method"))),
            ("method-gan", b => EditJson(b, o => o["Training"]!["Method"]!["Method"] = "GAN")),
            ("method-dit", b => EditJson(b, o => o["Training"]!["Method"]!["Method"] = "DiT")),
            ("device", b => EditJson(b, o => o["Training"]!["Device"] = "quantum")),
            ("lr-negative", b => EditJson(b, o => o["Training"]!["LearningRate"] = -1)),
            ("format", b => EditJson(b, o => o["Format"] = "x")),
            ("not-json", b => "{\"Model\": ["u8.ToArray()),
        })
            AddCheckpoint("McDiT", "config-" + name, "config.json", edit, reseal: true);
        AddCheckpoint("DiT", "dit-config-depth-1e6", "config.json", b => EditJson(b, o => o["Model"]!["Depth"] = 1_000_000), reseal: true);

        foreach (var (name, edit) in new (string, Func<byte[], byte[]>)[]
        {
            ("stage-16384", b => State(b, o => o["Stage"] = 16384)),
            ("stage-0", b => State(b, o => o["Stage"] = 0)),
            ("step-negative", b => State(b, o => o["Step"] = -1)),
            ("step-1e30", b => RawJsonValue(b, "Step", "1e30")),
            ("step-99", b => State(b, o => o["Step"] = 99)),
            ("epoch-huge", b => State(b, o => o["Epoch"] = 1_000_000_000_000_000)),
            ("batch-negative", b => State(b, o => o["BatchInEpoch"] = -1)),
            ("no-step", b => State(b, o => o.Remove("Step"))),
            ("loss-nan", b => State(b, o => o["LastLoss"] = "NaN")),
            ("loss-1e400", b => RawJsonValue(b, "LastLoss", "1e400")),
        })
            AddCheckpoint("McDiT", "state-" + name, "state.json", edit, reseal: true);

        foreach (var (name, edit) in new (string, Func<byte[], byte[]>)[]
        {
            ("rng-left-0", Rng(s => BinaryPrimitives.WriteInt32LittleEndian(s[8..], 0))),
            ("rng-left-1000", Rng(s => BinaryPrimitives.WriteInt32LittleEndian(s[8..], 1000))),
            ("rng-seeded-0", Rng(s => BinaryPrimitives.WriteInt32LittleEndian(s[12..], 0))),
            ("rng-next-1000", Rng(s => BinaryPrimitives.WriteUInt64LittleEndian(s[16..], 1000))),
            ("rng-word", Rng(s => BinaryPrimitives.WriteUInt64LittleEndian(s[(24 + 8 * 7)..], ulong.MaxValue))),
            ("rng-flag", Rng(s => s[5052] = 7)),
            ("rng-normal-flag", Rng(s => BinaryPrimitives.WriteInt32LittleEndian(s[5040..], 5))),
            ("rng-zeros", Rng(s => s.Clear())),
            ("rng-as-i8", b => EditHeader(b, h => h["rng.cpu"]!["dtype"] = "I8")),
            ("rng-missing", b => EditHeader(b, h => h.Remove("rng.cpu"))),
            ("moments-negative", b => SetFloat(b, Tensors(SplitSafeTensors(b).Header).First(t => t.Name.StartsWith("exp_avg_sq.")).Name, 0, -1f)),
            ("moments-nan", b => SetFloat(b, Tensors(SplitSafeTensors(b).Header).First(t => t.Name.StartsWith("exp_avg.")).Name, 0, float.NaN)),
            ("step-count-text", b => EditHeader(b, h => h["__metadata__"]!["step_count"] = "abc")),
            ("step-count-other", b => EditHeader(b, h => h["__metadata__"]!["step_count"] = "7")),
            ("lr-nan", b => EditHeader(b, h => h["__metadata__"]!["learning_rate"] = "NaN")),
            ("lr-negative", b => EditHeader(b, h => h["__metadata__"]!["learning_rate"] = "-1")),
            ("no-metadata", b => EditHeader(b, h => h.Remove("__metadata__"))),
        })
        {
            AddCheckpoint("McDiT", "optimizer-" + name, "optimizer.safetensors", edit, reseal: true);
            if (name.StartsWith("rng-", StringComparison.Ordinal)) AddCheckpoint("DiT", "dit-optimizer-" + name, "optimizer.safetensors", edit, reseal: true);
        }

        foreach (var file in new[] { "model.safetensors", "ema.safetensors", "branches.safetensors" })
        {
            var f = file.Split('.')[0];
            AddCheckpoint("McDiT", $"{f}-f32-as-i32", file, b => EditHeader(b, h => { foreach (var (_, e) in Tensors(h)) if ((string)e["dtype"]! == "F32") e["dtype"] = "I32"; }), reseal: true);
            AddCheckpoint("McDiT", $"{f}-nan", file, b => SetFloat(b, Tensors(SplitSafeTensors(b).Header)[0].Name, 0, float.NaN), reseal: true);
            AddCheckpoint("McDiT", $"{f}-transposed", file, b => EditHeader(b, h =>
            {
                var m = Tensors(h).First(t => t.Entry["shape"]!.AsArray().Count == 2 && t.Entry["shape"]![0]!.GetValue<long>() != t.Entry["shape"]![1]!.GetValue<long>()).Entry;
                var s = m["shape"]!.AsArray();
                m["shape"] = new JsonArray(s[1]!.GetValue<long>(), s[0]!.GetValue<long>());
            }), reseal: true);
            AddCheckpoint("McDiT", $"{f}-huge-header", file, b => SetHeaderLength(b, 1UL << 50), reseal: true);
        }
        RunAndAssert("checkpoint folder");
    }

    // ------------------------------------------------------------------ what --resume sees

    /// <summary>A run's checkpoints/ folder: step-0000002 intact, and a newer step-0000004 that <paramref name="damage"/> spoils.</summary>
    void AddSeries(string name, Action<string, string> damage, Expect expect = Expect.Load)
    {
        var folder = NewPath("series", name);
        var older = Path.Combine(folder, "step-0000002");
        CopyFolder(Seed("checkpoint-McDiT"), older);
        var newer = Path.Combine(folder, "step-0000004");
        CopyFolder(older, newer);
        // The newer one says step 4 throughout, then gets damaged.
        File.WriteAllBytes(Path.Combine(newer, "state.json"), EditJson(File.ReadAllBytes(Path.Combine(newer, "state.json")), o => o["Step"] = 4));
        File.WriteAllBytes(Path.Combine(newer, "optimizer.safetensors"),
            EditHeader(File.ReadAllBytes(Path.Combine(newer, "optimizer.safetensors")), h => h["__metadata__"]!["step_count"] = "4"));
        CheckpointManifest.Write(newer);
        File.WriteAllText(Path.Combine(folder, "latest"), "step-0000004");
        damage(older, newer);
        _cases.Add(new FuzzCase("series", folder, name, expect));
    }

    [Fact]
    public void CheckpointSeriesAsResumeSeesThem()
    {
        AddSeries("intact", (_, _) => { });
        AddSeries("newest-truncated", (_, n) => File.WriteAllBytes(Path.Combine(n, "ema.safetensors"), File.ReadAllBytes(Path.Combine(n, "ema.safetensors"))[..50]));
        AddSeries("newest-without-manifest", (_, n) => File.Delete(Path.Combine(n, CheckpointManifest.FileName)));
        AddSeries("newest-rng-resealed", (_, n) =>
        {
            var p = Path.Combine(n, "optimizer.safetensors");
            File.WriteAllBytes(p, Rng(s => BinaryPrimitives.WriteInt32LittleEndian(s[8..], 0))(File.ReadAllBytes(p)));
            CheckpointManifest.Write(n);
        });
        AddSeries("newest-depth-resealed", (_, n) =>
        {
            var p = Path.Combine(n, "config.json");
            File.WriteAllBytes(p, EditJson(File.ReadAllBytes(p), o => o["Model"]!["Depth"] = 1_000_000));
            CheckpointManifest.Write(n);
        });
        AddSeries("crash-between-renames", (_, n) => Directory.Move(n, Path.Combine(Path.GetDirectoryName(n)!, $".step-0000004.{Guid.NewGuid():N}.old")));
        AddSeries("half-written-temp", (_, n) =>
        {
            var temp = Path.Combine(Path.GetDirectoryName(n)!, $".step-0000006.{Guid.NewGuid():N}.tmp");
            CopyFolder(n, temp);
            File.Delete(Path.Combine(temp, CheckpointManifest.FileName));
        });
        AddSeries("latest-names-nothing", (_, n) => File.WriteAllText(Path.Combine(Path.GetDirectoryName(n)!, "latest"), "step-0000099"));
        AddSeries("newest-misnamed", (_, n) => Directory.Move(n, Path.Combine(Path.GetDirectoryName(n)!, "step-0000008")));
        AddSeries("all-damaged", (o, n) =>
        {
            File.Delete(Path.Combine(o, "state.json"));
            File.Delete(Path.Combine(n, "model.safetensors"));
        }, Expect.Error);
        RunAndAssert("checkpoint series");
    }

    // ------------------------------------------------------------------ images

    [Fact]
    public void ImageFiles()
    {
        var random = Seeds.Random(404);
        var seedFolder = Seed("images");
        Warmup("images", seedFolder);
        void Add(string name, string file, Func<byte[], byte[]> change)
        {
            var folder = NewPath("images", name);
            CopyFolder(seedFolder, folder);
            var path = Path.Combine(folder, "a", file);
            File.WriteAllBytes(path, change(File.ReadAllBytes(path)));
            _cases.Add(new FuzzCase("images", folder, name, Expect.ErrorOrLoad));
        }
        foreach (var format in new[] { "png", "jpg", "bmp", "gif" })
        {
            var file = "image." + format;
            for (int i = 0; i < 4; i++) Add($"{format}-bitflip", file, b => FlipBits(b, random, 1 + random.Next(16)));
            foreach (var fraction in new[] { 0.1, 0.5, 0.9 }) Add($"{format}-cut", file, b => b[..(int)(b.Length * fraction)]);
            Add($"{format}-empty", file, _ => Array.Empty<byte>());
            Add($"{format}-garbage", file, _ => Enumerable.Range(0, 300).Select(_ => (byte)random.Next(256)).ToArray());
        }
        Add("png-huge", "image.png", b => PngSize(b, 0x7FFFFFFF, 0x7FFFFFFF));
        Add("png-wide", "image.png", b => PngSize(b, 1 << 30, 1));
        Add("png-zero", "image.png", b => PngSize(b, 0, 16));
        Add("bmp-huge", "image.bmp", b => { var c = (byte[])b.Clone(); BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(18), 1_000_000_000); BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(22), 1_000_000_000); return c; });
        Add("bmp-negative", "image.bmp", b => { var c = (byte[])b.Clone(); BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(18), -16); return c; });
        Add("gif-huge", "image.gif", b => { var c = (byte[])b.Clone(); BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(6), 65535); BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(8), 65535); return c; });
        Add("jpg-huge", "image.jpg", b => JpegSize(b, 65535, 65535));
        Add("text-as-png", "image.png", _ => "this is not an image"u8.ToArray());
        RunAndAssert("image file");
    }

    /// <summary>Sets a PNG's IHDR width and height and fixes the chunk's CRC, so decoders trust the sizes.</summary>
    static byte[] PngSize(byte[] png, uint width, uint height)
    {
        var c = (byte[])png.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(16), width);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(29), System.IO.Hashing.Crc32.HashToUInt32(c.AsSpan(12, 17)));
        return c;
    }

    /// <summary>Sets the frame size in a JPEG's first SOF marker.</summary>
    static byte[] JpegSize(byte[] jpeg, ushort width, ushort height)
    {
        var c = (byte[])jpeg.Clone();
        for (int i = 2; i + 9 < c.Length; i++)
            if (c[i] == 0xFF && c[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan(i + 5), height);
                BinaryPrimitives.WriteUInt16BigEndian(c.AsSpan(i + 7), width);
                return c;
            }
        throw new InvalidOperationException("no SOF marker");
    }
}
