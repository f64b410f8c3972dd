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
