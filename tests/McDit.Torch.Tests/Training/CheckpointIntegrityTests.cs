using System.Text.Json.Nodes;
using McDit.Torch.IO;
using McDit.Torch.Models;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Training;

/// <summary>Damaged, half-written and inconsistent checkpoints: named errors, skipping, recovery.</summary>
public sealed class CheckpointIntegrityTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mcdit-integrity-" + Guid.NewGuid().ToString("N"));

    static void Steps(DiffusionTrainer trainer, Tensor images, Tensor labels, int from, int count)
    {
        for (int s = from; s < from + count; s++)
        {
            using var scope = NewDisposeScope();
            var idx = torch.tensor(new long[] { s % 16, (s * 5 + 1) % 16, (s * 7 + 3) % 16 });
            trainer.Step(images.index_select(0, idx), labels.index_select(0, idx));
        }
    }

    static void AssertSame(DiffusionTrainer a, DiffusionTrainer b, string what)
    {
        foreach (var (x, y) in new[] { (a.Model, b.Model), (a.EmaModel, b.EmaModel) })
        {
            var expected = x.state_dict();
            foreach (var (name, value) in y.state_dict())
                Assert.True(TestTensors.Same(expected[name], value), $"{what}: '{name}' differs");
        }
        var ma = a.Optimizer.StateTensors();
        foreach (var (name, value) in b.Optimizer.StateTensors())
            Assert.True(TestTensors.Same(ma[name], value), $"{what}: optimizer '{name}' differs");
    }

    [Theory]
    [InlineData(TrainingMethod.MaskDiT)]
    [InlineData(TrainingMethod.McDiT)]
    public void ResumeInStageTwoIsExactIncludingTheParametersStageTwoLeavesUnused(TrainingMethod method)
    {
        // Stage 2 does not use mask_token (nor MC-DiT's clean_embedder): they must not move in either run.
        var (images, labels) = TinySetup.Data(16);
        var options = TinySetup.Options(MethodOptions.For(method));
        var dir = Path.Combine(_root, "stage2");
        using var straight = new DiffusionTrainer(TinySetup.BackboneFor(method), options);
        Steps(straight, images, labels, 0, 3);
        straight.StartUnmaskTuning();
        Steps(straight, images, labels, 3, 4);
        using (var first = new DiffusionTrainer(TinySetup.BackboneFor(method), options))
        {
            Steps(first, images, labels, 0, 3);
            first.StartUnmaskTuning();
            Steps(first, images, labels, 3, 1);
            Checkpoint.Save(first, dir);
        }
        using var resumed = Checkpoint.Load(dir);
        Assert.Equal(2, resumed.State.Stage);
        Steps(resumed, images, labels, 4, 3);
        AssertSame(straight, resumed, $"{method} resumed in stage 2");
        images.Dispose(); labels.Dispose();
    }

    string SavedCheckpoint(TrainingMethod method = TrainingMethod.McDiT, string name = "ckpt", int steps = 2)
    {
        var (images, labels) = TinySetup.Data(16);
        using var trainer = new DiffusionTrainer(TinySetup.BackboneFor(method), TinySetup.Options(MethodOptions.For(method)));
        Steps(trainer, images, labels, 0, steps);
        var dir = Path.Combine(_root, name);
        Checkpoint.Save(trainer, dir);
        images.Dispose(); labels.Dispose();
        return dir;
    }

    [Fact]
    public void ACheckpointCarriesAManifestOfEveryFile()
    {
        var dir = SavedCheckpoint();
        var manifest = CheckpointManifest.Verify(dir);
        Assert.Equal(new[] { "branches.safetensors", "config.json", "ema.safetensors", "model.safetensors", "optimizer.safetensors", "state.json" },
            manifest.Files.Select(f => f.Name));
    }

    [Theory]
    [InlineData("model.safetensors", "flip")]
    [InlineData("optimizer.safetensors", "truncate")]
    [InlineData("state.json", "delete")]
    [InlineData("manifest.json", "delete")]
    public void ADamagedFileIsNamed(string file, string damage)
    {
        var dir = SavedCheckpoint();
        var path = Path.Combine(dir, file);
        var bytes = File.ReadAllBytes(path);
        if (damage == "flip") { bytes[bytes.Length / 2] ^= 0x10; File.WriteAllBytes(path, bytes); }
        else if (damage == "truncate") File.WriteAllBytes(path, bytes[..(bytes.Length / 3)]);
        else File.Delete(path);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains(file == "state.json" ? "state.json" : file, e.Message);
    }

    /// <summary>Damage a file and rewrite the manifest to match, as a buggy writer would: the content checks must catch it.</summary>
    static void Rewrite(string dir, string file, Func<byte[], byte[]> change)
    {
        var path = Path.Combine(dir, file);
        File.WriteAllBytes(path, change(File.ReadAllBytes(path)));
        CheckpointManifest.Write(dir);
    }

    static byte[] EditJson(byte[] json, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        edit(node);
        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    public static IEnumerable<object[]> BadJson() => new[]
    {
        new object[] { "state.json", "Stage", (Action<JsonObject>)(o => o["Stage"] = 16384), "Stage = 16384" },
        new object[] { "state.json", "Step", (Action<JsonObject>)(o => o["Step"] = -5), "Step = -5" },
        new object[] { "state.json", "missing Step", (Action<JsonObject>)(o => o.Remove("Step")), "Step" },
        new object[] { "config.json", "Depth", (Action<JsonObject>)(o => o["Model"]!["Depth"] = 1_000_000), "Depth = 1000000" },
        new object[] { "config.json", "MlpRatio", (Action<JsonObject>)(o => o["Model"]!["MlpRatio"] = 1e9), "MlpRatio" },
        new object[] { "config.json", "DecoderHiddenSize", (Action<JsonObject>)(o => o["Model"]!["DecoderHiddenSize"] = 1_000_000), "DecoderHiddenSize" },
        new object[] { "config.json", "InputSize", (Action<JsonObject>)(o => o["Model"]!["InputSize"] = 65536), "InputSize" },
        new object[] { "config.json", "1e308", (Action<JsonObject>)(o => o["Model"]!["Depth"] = JsonValue.Create(1e308)), "Depth" },
        new object[] { "config.json", "missing Model", (Action<JsonObject>)(o => o.Remove("Model")), "Model" },
        new object[] { "config.json", "missing Training", (Action<JsonObject>)(o => o.Remove("Training")), "Training" },
        new object[] { "config.json", "missing Method", (Action<JsonObject>)(o => o["Training"]!.AsObject().Remove("Method")), "Method" },
        new object[] { "config.json", "consistent but larger", (Action<JsonObject>)(o => o["Model"]!["Depth"] = 3), "elements" },
    };

    [Theory]
    [MemberData(nameof(BadJson))]
    public void AnOutOfRangeOrMissingValueIsANamedErrorBeforeAnythingIsBuilt(string file, string what, Action<JsonObject> edit, string expected)
    {
        var dir = SavedCheckpoint(name: "json-" + what.Replace(' ', '-'));
        Rewrite(dir, file, bytes => EditJson(bytes, edit));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains(file, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void FloatWeightsStoredAsIntegersAreRefused()
    {
        var dir = SavedCheckpoint(TrainingMethod.DiT);
        // Relabel every F32 tensor as I32 (same size): a silent conversion would load garbage.
        Rewrite(dir, "ema.safetensors", bytes => SafeTensorsBytes.RelabelDType(bytes, "F32", "I32"));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains("ema.safetensors", e.Message);
        Assert.Contains("I32", e.Message);
    }

    [Fact]
    public void NonFiniteWeightsAreRefused()
    {
        var dir = SavedCheckpoint(TrainingMethod.DiT);
        Rewrite(dir, "model.safetensors", bytes =>
        {
            BitConverter.GetBytes(float.NaN).CopyTo(bytes, bytes.Length - 4); // the last element of some F32 tensor
            return bytes;
        });
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(dir));
        Assert.Contains("NaN or infinite", e.Message);
    }

    public static IEnumerable<object[]> BadRng() => new[]
    {
        new object[] { "left = 0", (Action<byte[]>)(s => BitConverter.GetBytes(0).CopyTo(s, 8)) },
        new object[] { "left = 1000", (Action<byte[]>)(s => BitConverter.GetBytes(1000).CopyTo(s, 8)) },
        new object[] { "seeded = 0", (Action<byte[]>)(s => BitConverter.GetBytes(0).CopyTo(s, 12)) },
        new object[] { "next = 625", (Action<byte[]>)(s => BitConverter.GetBytes(625UL).CopyTo(s, 16)) },
        new object[] { "a state word over 32 bits", (Action<byte[]>)(s => BitConverter.GetBytes(ulong.MaxValue).CopyTo(s, 24 + 8 * 100)) },
        new object[] { "flag 7", (Action<byte[]>)(s => s[5052] = 7) },
    };

    [Theory]
    [MemberData(nameof(BadRng))]
    public void ADamagedRandomStateIsANamedErrorNotAnAbort(string what, Action<byte[]> damage)
    {
        // Reaching libtorch's set_state with any of these would abort the test host (SIGABRT).
        using var g = new Generator(3, torch.CPU);
        using var state = g.get_state();
        var bytes = state.data<byte>().ToArray();
        damage(bytes);
        using var bad = torch.tensor(bytes);
        var e = Assert.Throws<InvalidDataException>(() => GeneratorState.Restore(g, bad, "optimizer.safetensors"));
        Assert.Contains("rng.cpu", e.Message);
        Assert.False(string.IsNullOrEmpty(what));
        using var wrongType = torch.zeros(GeneratorState.CpuStateBytes, dtype: ScalarType.Int32);
        Assert.Throws<InvalidDataException>(() => GeneratorState.Restore(g, wrongType, "x"));
        using var wrongSize = torch.zeros(10, dtype: ScalarType.Byte);
        Assert.Throws<InvalidDataException>(() => GeneratorState.Restore(g, wrongSize, "x"));
    }

    [Fact]
    public void TheNewestIntactCheckpointIsFoundOnDiskWhateverLatestSays()
    {
        var series = new CheckpointSeries(Path.Combine(_root, "series"));
        var (images, labels) = TinySetup.Data(16);
        using (var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.MaskDiT))))
            for (int s = 0; s < 3; s++)
            {
                Steps(trainer, images, labels, s, 1);
                series.Save(trainer);
            }
        Assert.Equal(new long[] { 3, 2 }, series.Candidates().Select(c => c.Step));
        // The newest is truncated, and `latest` names a folder that does not exist.
        var newest = series.For(3);
        var file = Path.Combine(newest, "ema.safetensors");
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..100]);
        File.WriteAllText(Path.Combine(series.Folder, "latest"), "step-0000099");
        var (found, skipped) = series.FindLatest();
        Assert.Equal(series.For(2), found);
        Assert.Equal(newest, Assert.Single(skipped).Folder);
        Assert.Contains("ema.safetensors", skipped[0].Problem);
        var (trainer2, folder) = series.ResumeLatest();
        using (trainer2)
        {
            Assert.Equal(series.For(2), folder);
            Assert.Equal(2, trainer2!.State.Step);
        }
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void ACrashBetweenTheTwoRenamesLosesNothing()
    {
        var series = new CheckpointSeries(Path.Combine(_root, "renames"));
        var (images, labels) = TinySetup.Data(16);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.McDiT)));
        Steps(trainer, images, labels, 0, 2);
        var folder = series.Save(trainer);
        // What Checkpoint.Save leaves when killed after its first rename: the old folder moved aside, the new one not in place.
        var aside = Path.Combine(series.Folder, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.old");
        Directory.Move(folder, aside);
        var halfWritten = Path.Combine(series.Folder, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(halfWritten);
        File.WriteAllText(Path.Combine(halfWritten, "config.json"), "{");
        Assert.Null(series.Latest);
        var repairs = series.Recover();
        Assert.Equal(2, repairs.Count);
        Assert.Equal(folder, series.Latest);
        Assert.Empty(Directory.GetDirectories(series.Folder, ".*"));
        images.Dispose(); labels.Dispose();
    }

    [Fact]
    public void CheckpointsWrittenOnInterruptionArePrunedOnceSuperseded()
    {
        var series = new CheckpointSeries(Path.Combine(_root, "prune"), keep: 2);
        var (images, labels) = TinySetup.Data(16);
        using var trainer = new DiffusionTrainer(TinySetup.Backbone(), TinySetup.Options(MethodOptions.For(TrainingMethod.DiT) with { }));
        Func<long, bool> everySecond = s => s % 2 == 0;
        foreach (var step in new[] { 2, 3, 4, 5 })
        {
            Steps(trainer, images, labels, (int)trainer.State.Step, step - (int)trainer.State.Step);
            series.Save(trainer, everySecond); // 3 and 5 stand for checkpoints written on Ctrl+C
        }
        // As an uninterrupted run would have: the newest, and the newest regular one before it.
        Assert.Equal(new long[] { 5, 4 }, series.Candidates().Select(c => c.Step));
        Steps(trainer, images, labels, 5, 1);
        series.Save(trainer, everySecond);
        Assert.Equal(new long[] { 6, 4 }, series.Candidates().Select(c => c.Step));
        images.Dispose(); labels.Dispose();
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }
}
