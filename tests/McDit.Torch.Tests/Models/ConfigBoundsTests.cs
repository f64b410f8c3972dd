using McDit.Torch.Models;
using Xunit;

namespace McDit.Torch.Tests.Models;

public class ConfigBoundsTests
{
    static DiffusionTransformerConfig Tiny => new()
    {
        InputSize = 8, InChannels = 2, PatchSize = 2, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 3,
    };

    public static IEnumerable<object[]> Shapes() => new[]
    {
        new object[] { Tiny },
        new object[] { Tiny with { NumClasses = 0, LearnSigma = true, MlpRatio = 2.5 } },
        new object[] { Tiny with { DecoderDepth = 2, DecoderHiddenSize = 16, DecoderNumHeads = 2, UseMaskToken = true } },
        new object[] { Tiny with { DecoderDepth = 1, DecoderHiddenSize = 16, DecoderNumHeads = 4, UseMaskToken = true, CleanDecoderInput = true } },
        new object[] { Tiny with { DecoderDepth = 1, DecoderHiddenSize = 24, DecoderNumHeads = 2, UseMaskToken = true, CleanEncoderInput = true, PatchSize = 4 } },
        new object[] { Tiny with { OutputConvolution = true, LearnSigma = true } },
        new object[] { Tiny with { OutputOverlap = 1, LearnSigma = true } },
        new object[] { Tiny with { OutputOverlap = 1, DecoderDepth = 1, DecoderHiddenSize = 16, DecoderNumHeads = 4, UseMaskToken = true, CleanDecoderInput = true } },
    };

    [Fact]
    public void TheOutputConvolutionStartsAsTheIdentityAndLearnsAcrossPatchBorders()
    {
        var config = Tiny with { OutputConvolution = true };
        using var model = new MaskedDiffusionTransformer(config);
        using var scope = TorchSharp.torch.NewDisposeScope();
        var patches = TorchSharp.torch.randn(1, config.NumPatches, config.PatchSize * config.PatchSize * config.OutChannels);
        using (var plain = new MaskedDiffusionTransformer(config with { OutputConvolution = false }))
            Assert.True(model.Unpatchify(patches).allclose(plain.Unpatchify(patches)), "zero-initialised, the convolution adds nothing");
        var conv = model.named_parameters().Single(p => p.name == "output_conv.weight").parameter;
        using (TorchSharp.torch.no_grad()) conv.fill_(0.1);
        // One token's patch now reaches the pixels just across its border.
        var single = TorchSharp.torch.zeros_like(patches);
        using (TorchSharp.torch.no_grad()) single[0, 0] = TorchSharp.torch.ones(patches.shape[2]);
        var image = model.Unpatchify(single);
        Assert.True(image[0, 0, 0, config.PatchSize].item<float>() != 0, "the pixel right of the first patch sees it");
        var cannotExport = Assert.Throws<ArgumentException>(() => McDit.Torch.Interop.ReferenceCheckpoint.ToReference(model, McDit.Torch.Interop.ReferenceFormat.DiT, out _));
        Assert.Contains("output convolution", cannotExport.Message);
    }

    [Theory]
    [InlineData(2, new[] { 1f, 1f, 0.875f, 0.625f, 0.375f, 0.125f, 0f, 0f })] // a tent over 8 pixels: (1, 3, 5, 7, 7, 5, 3, 1) / 8
    [InlineData(1, new[] { 1f, 1f, 1f, 0.75f, 0.25f, 0f, 0f, 0f })]           // ramps over the 2 pixels at the border
    public void OverlappingOutputWindowsBlendAcrossPatchBordersAndKeepConstants(int overlap, float[] expected)
    {
        var config = Tiny with { OutputOverlap = overlap, InputSize = 8, PatchSize = 4 };
        using var model = new MaskedDiffusionTransformer(config);
        using var scope = TorchSharp.torch.NewDisposeScope();
        int k = 4 + 2 * overlap, c = config.OutChannels;
        Assert.Equal(k * k * c, config.PatchOutputFeatures);
        // Every window 0.7: the normalised overlap-add is 0.7 everywhere, the image's borders included.
        var constant = model.Unpatchify(TorchSharp.torch.full(2, config.NumPatches, k * k * c, 0.7f));
        Assert.Equal(new long[] { 2, c, 8, 8 }, constant.shape);
        Assert.True(constant.allclose(TorchSharp.torch.full_like(constant, 0.7f), atol: 1e-6), "a constant survives the blend");
        // Token 0 (top-left) at 1, the others at 0: along the first row its weight falls across the border to token 1
        // (between pixels 3 and 4) in steps, instead of jumping from 1 to 0 as DiT's plain patches do.
        var single = TorchSharp.torch.zeros(1, config.NumPatches, k * k * c);
        using (TorchSharp.torch.no_grad()) single[0, 0] = TorchSharp.torch.ones(k * k * c);
        var row = model.Unpatchify(single)[0, 0, 0];
        var values = Enumerable.Range(0, 8).Select(i => row[i].item<float>()).ToArray();
        for (int i = 0; i < 8; i++) Assert.True(Math.Abs(values[i] - expected[i]) < 1e-6, $"pixel {i}: {string.Join(", ", values)}");
        var cannotExport = Assert.Throws<ArgumentException>(() => McDit.Torch.Interop.ReferenceCheckpoint.ToReference(model, McDit.Torch.Interop.ReferenceFormat.DiT, out _));
        Assert.Contains("overlapping output", cannotExport.Message);
    }

    [Fact]
    public void AnOutputOverlapBeyondHalfThePatchIsRefusedByName()
    {
        var error = Assert.Throws<ArgumentException>(() => (Tiny with { PatchSize = 4, OutputOverlap = 3 }).Validated());
        Assert.Contains("OutputOverlap", error.Message);
        Assert.Throws<ArgumentException>(() => (Tiny with { PatchSize = 1, OutputOverlap = 1 }).Validated());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheElementCountFromTheConfigEqualsTheBuiltNetwork(DiffusionTransformerConfig config)
    {
        // Loaders rely on it to reject a config that does not fit its weights before building anything.
        using var model = new MaskedDiffusionTransformer(config);
        Assert.Equal(model.state_dict().Values.Sum(t => t.numel()), config.StateElementCount());
    }

    [Fact]
    public void TheElementCountOfDiTXL2IsThePublishedOne()
    {
        var xl = DiffusionTransformerConfig.Preset(ModelSize.XL, 2, 32, 4, 1000) with { LearnSigma = true };
        // 675,129,632: DiT's count, which includes its fixed position table (a parameter without gradient).
        Assert.Equal(675_129_632L, xl.StateElementCount());
    }

    [Theory]
    [InlineData("Depth", 1_000_000)]
    [InlineData("HiddenSize", 1 << 20)]
    [InlineData("InputSize", 1 << 20)]
    [InlineData("NumClasses", int.MaxValue)]
    [InlineData("DecoderHiddenSize", 1 << 20)]
    [InlineData("PatchSize", 1000)]
    [InlineData("InChannels", 100_000)]
    public void HugeValuesAreNamedErrors(string field, int value)
    {
        var config = field switch
        {
            "Depth" => Tiny with { Depth = value },
            "HiddenSize" => Tiny with { HiddenSize = value },
            "InputSize" => Tiny with { InputSize = value },
            "NumClasses" => Tiny with { NumClasses = value },
            "DecoderHiddenSize" => Tiny with { DecoderDepth = 1, DecoderNumHeads = 2, DecoderHiddenSize = value },
            "PatchSize" => Tiny with { PatchSize = value },
            _ => Tiny with { InChannels = value },
        };
        var e = Assert.Throws<ArgumentException>(() => config.Validated());
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void AHugeMlpRatioIsANamedError()
    {
        Assert.Contains("MlpRatio", Assert.Throws<ArgumentException>(() => (Tiny with { MlpRatio = 1e9 }).Validated()).Message);
        Assert.Contains("MlpRatio", Assert.Throws<ArgumentException>(() => (Tiny with { MlpRatio = double.NaN }).Validated()).Message);
    }
}
