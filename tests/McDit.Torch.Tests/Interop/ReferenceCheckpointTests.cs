using McDit.Torch.Diffusion;
using McDit.Torch.Interop;
using McDit.Torch.IO;
using McDit.Torch.Models;
using McDit.Torch.Tests.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Interop;

/// <summary>
/// Reference checkpoints written by real PyTorch (python3-torch) from the golden fixtures' weights, in each layout:
/// imported, the network reproduces the fixture's golden output; exported, torch.load(weights_only=True) reads the same
/// tensors back; a pickle that would run code is refused.
/// </summary>
public sealed class ReferenceCheckpointTests : IDisposable
{
    readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
    const string DiT = "dit_tiny_golden.safetensors", MaskDiT = "maskdit_tiny_golden.safetensors";

    static double DiTError(MaskedDiffusionTransformer model)
    {
        using var fixture = TestTensors.Fixture(DiT);
        var t = fixture.Tensors;
        using var _ = no_grad();
        using var output = model.call(t["input.x"], t["input.t"], t["input.y"]);
        return TestTensors.RelativeError(output, t["output"]);
    }

    static double MaskDiTError(MaskedDiffusionTransformer model)
    {
        using var fixture = TestTensors.Fixture(MaskDiT);
        var t = fixture.Tensors;
        using var scope = NewDisposeScope();
        var x = t["input.images"] + t["input.eps"] * t["input.sigma"].reshape(-1, 1, 1, 1);
        var oneHot = t["input.labels_onehot"];
        var labels = torch.where(oneHot.sum(1).eq(0), torch.full_like(oneHot.argmax(1), model.NullLabel), oneHot.argmax(1));
        var d = ModelDenoiser.Create(model)(x, t["input.sigma"], labels);
        return TestTensors.RelativeError(d, t["eval.D"]);
    }

    [TorchFact]
    public void BareDiTStateDictReproducesTheGoldenOutput()
    {
        var pt = _dir.File("dit.pt");
        PythonTorch.Run("write", FixturePath(DiT), pt, "bare");
        using var imported = ReferenceCheckpoint.Read(pt, ReferenceFormat.DiT);
        var c = imported.Config;
        Assert.Equal((8, 4, 2, 64, 2, 4, 10, true, true), (c.InputSize, c.InChannels, c.PatchSize, c.HiddenSize, c.Depth, c.NumHeads, c.NumClasses, c.LearnSigma, c.HasNullLabel));
        Assert.Equal(DiffusionFormulation.VpEpsilon, c.Formulation);
        Assert.Equal("state dict", imported.Part);
        using var model = imported.CreateNetwork();
        double error = DiTError(model);
        Assert.True(error < 1e-5, $"relative error {error}");
    }

    [TorchFact]
    public void TrainingCheckpointWithNamespaceArgsGivesItsEmaOrItsModel()
    {
        var pt = _dir.File("checkpoint.pt");
        PythonTorch.Run("write", FixturePath(DiT), pt, "checkpoint");
        using (var ema = ReferenceCheckpoint.Read(pt, ReferenceFormat.DiT, new ReferenceImportOptions { UseEma = true }))
        {
            Assert.Equal("ema", ema.Part);
            var args = Assert.IsType<PickleObject>(ema.Arguments);
            Assert.Equal(("argparse", "Namespace"), (args.Module, args.Name));
            Assert.Equal("DiT-Micro/2", args.Attributes["model"]);
            Assert.Equal(10L, args.Attributes["num_classes"]);
            using var model = ema.CreateNetwork();
            double error = DiTError(model);
            Assert.True(error < 1e-5, $"relative error {error}");
        }
        // 'model' holds the weights + 1: taking it gives another network.
        using var trained = ReferenceCheckpoint.Import(pt, ReferenceFormat.DiT);
        Assert.True(DiTError(trained) > 0.1);
    }

    [TorchFact]
    public void MaskDiTCheckpointConvertsTheOneHotLabelLinearExactly()
    {
        var pt = _dir.File("maskdit.pt");
        PythonTorch.Run("write", FixturePath(MaskDiT), pt, "maskdit");
        using var imported = ReferenceCheckpoint.Read(pt, ReferenceFormat.MaskDiT, new ReferenceImportOptions { UseEma = true, DecoderNumHeads = 4 });
        var c = imported.Config;
        Assert.Equal((2, 32, 4, true, false, 10), (c.DecoderDepth, c.DecoderHiddenSize, c.DecoderNumHeads, c.UseMaskToken, c.LearnSigma, c.NumClasses));
        Assert.Equal(DiffusionFormulation.Edm, c.Formulation);
        using (var fixture = TestTensors.Fixture(MaskDiT))
        {
            var linear = fixture.Tensors["y_embedder.embedding_table.weight"]; // [D, C]
            var table = imported.Tensors["y_embedder.embedding_table.weight"];  // [C + 1, D]
            Assert.True(TestTensors.Same(linear.t(), table[..10]));
            Assert.Equal(0f, table[10].abs().max().item<float>());
        }
        using var model = imported.CreateNetwork();
        double error = MaskDiTError(model);
        Assert.True(error < 1e-5, $"relative error {error}");
    }

    [TorchFact]
    public void ExportsLoadInPyTorchWithWeightsOnlyAndMatchExactly()
    {
        foreach (var (fixture, format, layout, fileName) in new[]
                 {
                     (DiT, ReferenceFormat.DiT, ReferenceLayout.Bare, "dit.pt"),
                     (DiT, ReferenceFormat.DiT, ReferenceLayout.Checkpoint, "dit-ckpt.pt"),
                     (MaskDiT, ReferenceFormat.MaskDiT, ReferenceLayout.Checkpoint, "maskdit.pt"),
                     (MaskDiT, ReferenceFormat.MaskDiT, ReferenceLayout.Bare, "maskdit-bare.pt"),
                 })
        {
            var source = _dir.File("source-" + fileName);
            PythonTorch.Run("write", FixturePath(fixture), source, "bare");
            using var model = ReferenceCheckpoint.Import(source, format, new ReferenceImportOptions { DecoderNumHeads = 4 });
            var exported = _dir.File(fileName);
            var notes = ReferenceCheckpoint.Export(model, format, exported, layout);
            Assert.DoesNotContain(notes, n => n.Contains("folded", StringComparison.Ordinal));
            var output = PythonTorch.Run("check", exported, FixturePath(fixture), format == ReferenceFormat.DiT ? "dit" : "maskdit");
            Assert.Contains("tensors equal", output);
        }
    }

    [TorchFact]
    public void APickleThatWouldRunCodeIsRefusedAndRunsNothing()
    {
        var pt = _dir.File("evil.pt");
        var marker = _dir.File("PWNED");
        PythonTorch.Run("evil", pt, marker);
        var e = Assert.Throws<UnsafePickleException>(() => ReferenceCheckpoint.Read(pt, ReferenceFormat.DiT));
        Assert.Contains(e.Global, new[] { "posix.system", "os.system" });
        Assert.False(File.Exists(marker));
    }

    [TorchFact]
    public void TruncatedPyTorchFilesGiveANamedError()
    {
        var pt = _dir.File("dit.pt");
        PythonTorch.Run("write", FixturePath(DiT), pt, "checkpoint");
        var bytes = File.ReadAllBytes(pt);
        var cut = _dir.File("cut.pt");
        foreach (var length in new[] { 10, bytes.Length / 4, bytes.Length / 2, bytes.Length - 100 })
        {
            File.WriteAllBytes(cut, bytes[..length]);
            var e = Assert.ThrowsAny<TorchFormatException>(() => ReferenceCheckpoint.Read(cut, ReferenceFormat.DiT));
            Assert.Contains(cut, e.Message);
        }
    }

    [Fact]
    public void SafetensorsRoundTripExactlyAndInferTheShape()
    {
        using var fixture = TestTensors.Fixture(MaskDiT);
        var source = _dir.File("maskdit.safetensors");
        SafeTensors.Save(source, TestTensors.WeightsOnly(fixture.Tensors));
        var options = new ReferenceImportOptions { DecoderNumHeads = 4 };
        using var model = ReferenceCheckpoint.Import(source, ReferenceFormat.MaskDiT, options);
        Assert.True(MaskDiTError(model) < 1e-5);
        var exported = _dir.File("exported.safetensors");
        ReferenceCheckpoint.Export(model, ReferenceFormat.MaskDiT, exported, ReferenceLayout.Bare);
        using var back = SafeTensors.Load(exported);
        var expected = TestTensors.WeightsOnly(fixture.Tensors);
        Assert.Equal(expected.Keys.Order(), back.Tensors.Keys.Order());
        foreach (var (k, v) in expected) Assert.True(TestTensors.Same(v, back.Tensors[k]), k);
        // ... and .pt the same way, read back by our own reader.
        var pt = _dir.File("exported.pt");
        ReferenceCheckpoint.Export(model, ReferenceFormat.MaskDiT, pt);
        using var again = ReferenceCheckpoint.Import(pt, ReferenceFormat.MaskDiT, options with { UseEma = true });
        foreach (var (k, v) in model.state_dict()) Assert.True(TestTensors.Same(v, again.state_dict()[k]), k);
    }

    [Fact]
    public void ANonZeroNullLabelIsFoldedIntoTheTimestepBias()
    {
        using var fixture = TestTensors.Fixture(MaskDiT);
        var source = _dir.File("maskdit.safetensors");
        SafeTensors.Save(source, TestTensors.WeightsOnly(fixture.Tensors));
        using var model = ReferenceCheckpoint.Import(source, ReferenceFormat.MaskDiT, new ReferenceImportOptions { DecoderNumHeads = 4 });
        using (no_grad())
        {
            var table = model.state_dict()["y_embedder.embedding_table.weight"];
            using var g = new Generator(5, torch.CPU);
            table[10].copy_(torch.randn(new long[] { 64 }, generator: g) * 0.1);
        }
        var pt = _dir.File("folded.pt");
        var notes = ReferenceCheckpoint.Export(model, ReferenceFormat.MaskDiT, pt);
        Assert.Contains(notes, n => n.Contains("folded", StringComparison.Ordinal));
        using var back = ReferenceCheckpoint.Import(pt, ReferenceFormat.MaskDiT, new ReferenceImportOptions { DecoderNumHeads = 4 });
        using var scope = NewDisposeScope();
        using var __ = no_grad();
        var x = fixture.Tensors["input.images"];
        var t = torch.tensor(new[] { 0.3f, -1f, 0.8f });
        foreach (var y in new[] { torch.tensor(new long[] { 1, 4, 10 }), torch.tensor(new long[] { 10, 10, 0 }) })
        {
            double error = TestTensors.RelativeError(back.call(x, t, y), model.call(x, t, y));
            Assert.True(error < 1e-5, $"relative error {error}");
        }
    }

    [Fact]
    public void ShapeProblemsAreNamed()
    {
        using var fixture = TestTensors.Fixture(MaskDiT);
        var weights = TestTensors.WeightsOnly(fixture.Tensors);
        var path = _dir.File("maskdit.safetensors");
        SafeTensors.Save(path, weights);
        Assert.Contains("--from maskdit", Assert.Throws<TorchFormatException>(() => ReferenceCheckpoint.Read(path, ReferenceFormat.DiT)).Message);
        Assert.Contains("--decoder-heads", Assert.Throws<TorchFormatException>(() => ReferenceCheckpoint.Read(path, ReferenceFormat.MaskDiT)).Message);
        weights.Remove("blocks.1.mlp.fc2.bias");
        SafeTensors.Save(path, weights);
        var e = Assert.Throws<TorchFormatException>(() => ReferenceCheckpoint.Read(path, ReferenceFormat.MaskDiT, new ReferenceImportOptions { DecoderNumHeads = 4 }));
        Assert.Contains("blocks.1.mlp.fc2.bias", e.Message);
    }

    [Fact]
    public void ADiTTableWithoutNullRowHasNoNullLabel()
    {
        using var fixture = TestTensors.Fixture(DiT);
        var weights = TestTensors.WeightsOnly(fixture.Tensors);
        weights["y_embedder.embedding_table.weight"] = weights["y_embedder.embedding_table.weight"][..10].contiguous();
        var path = _dir.File("dit10.safetensors");
        SafeTensors.Save(path, weights);
        using var model = ReferenceCheckpoint.Import(path, ReferenceFormat.DiT, new ReferenceImportOptions { NumClasses = 10 });
        Assert.False(model.Config.HasNullLabel);
        Assert.Equal(-1, model.NullLabel);
        Assert.Equal(model.Config.StateElementCount(), model.parameters().Sum(p => p.numel()));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var t = fixture.Tensors;
        // Real classes give DiT's output exactly as with the 11-row table.
        var y = torch.tensor(new long[] { 3, 1, 7 });
        using var full = new MaskedDiffusionTransformer(model.Config with { HasNullLabel = true });
        McDit.Torch.Training.Checkpoint.LoadInto(full, TestTensors.WeightsOnly(t), "dit fixture");
        Assert.True(TestTensors.Same(model.call(t["input.x"], t["input.t"], y), full.call(t["input.x"], t["input.t"], y)));
        Assert.Throws<InvalidOperationException>(() => model.call(t["input.x"], t["input.t"], null));
    }
}
