using System.Text.Json;
using McDit.Torch.Models;
using McDit.Torch.Modules;
using McDit.Torch.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Models;

public class DiTBackboneTests
{
    internal static DiffusionTransformerConfig FixtureConfig(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        var config = new DiffusionTransformerConfig
        {
            InputSize = r.GetProperty("input_size").GetInt32(),
            PatchSize = r.GetProperty("patch_size").GetInt32(),
            InChannels = r.GetProperty("in_channels").GetInt32(),
            HiddenSize = r.GetProperty("hidden_size").GetInt32(),
            Depth = r.GetProperty("depth").GetInt32(),
            NumHeads = r.GetProperty("num_heads").GetInt32(),
            NumClasses = r.GetProperty("num_classes").GetInt32(),
            LearnSigma = r.GetProperty("learn_sigma").GetBoolean(),
        };
        if (r.TryGetProperty("decoder_depth", out var dd))
            config = config with
            {
                DecoderDepth = dd.GetInt32(),
                DecoderHiddenSize = r.GetProperty("decoder_hidden_size").GetInt32(),
                DecoderNumHeads = r.GetProperty("decoder_num_heads").GetInt32(),
                UseMaskToken = true,
            };
        return config;
    }

    [Fact]
    public void DitXL2HasDitsPublishedParameterCount()
    {
        // DiT-XL/2, 32×32×4 latents, 1000 classes + null, learned variance: 675,129,632 (facebookresearch/DiT).
        torch.manual_seed(0);
        using var model = new MaskedDiffusionTransformer(
            DiffusionTransformerConfig.Preset(ModelSize.XL, 2, 32, 4, 1000) with { LearnSigma = true });
        Assert.Equal(675_129_632L, model.ParameterCount());
        Assert.Equal(674_834_720L, model.ParameterCount(trainableOnly: true));
    }

    [Theory]
    [InlineData(ModelSize.S, 2, 32_963_360L)]
    [InlineData(ModelSize.S, 4, 32_945_024L)]
    public void SmallPresetsMatchDitsCounts(ModelSize size, int patch, long expected)
    {
        using var model = new MaskedDiffusionTransformer(
            DiffusionTransformerConfig.Preset(size, patch, 32, 4, 1000) with { LearnSigma = true });
        Assert.Equal(expected, model.ParameterCount());
    }

    [Fact]
    public void ParametersCarryDitsNames()
    {
        using var model = new MaskedDiffusionTransformer(DiffusionTransformerConfig.Preset(ModelSize.Tiny, 2, 8, 4, 10));
        var names = model.state_dict().Keys.ToHashSet();
        foreach (var n in new[] { "x_embedder.proj.weight", "pos_embed", "t_embedder.mlp.0.weight", "t_embedder.mlp.2.bias",
                     "y_embedder.embedding_table.weight", "blocks.0.attn.qkv.weight", "blocks.5.mlp.fc2.bias",
                     "blocks.0.adaLN_modulation.1.weight", "final_layer.linear.weight", "final_layer.adaLN_modulation.1.bias" })
            Assert.Contains(n, names);
    }

    [Fact]
    public void FreshBlockIsTheIdentity()
    {
        torch.manual_seed(1);
        using var block = new DiTBlock(64, 64, 4);
        using var x = torch.randn(2, 16, 64);
        using var c = torch.randn(2, 64);
        using var y = block.call(x, c);
        Assert.True(TestTensors.Same(x, y));
    }

    [Fact]
    public void MatchesFacebookResearchDiTOnTheGoldenFixture()
    {
        using var fixture = TestTensors.Fixture("dit_tiny_golden.safetensors");
        var t = fixture.Tensors;
        using var model = new MaskedDiffusionTransformer(FixtureConfig(fixture.Metadata["config"]));
        Checkpoint.LoadInto(model, TestTensors.WeightsOnly(t), "dit fixture");
        model.eval();
        using var _ = no_grad();
        using var output = model.call(t["input.x"], t["input.t"], t["input.y"]);
        Assert.True(TestTensors.RelativeError(output, t["output"]) < 1e-5, $"relative error {TestTensors.RelativeError(output, t["output"])}");
    }

    [Fact]
    public void UnpatchifyInvertsPatchify()
    {
        using var model = new MaskedDiffusionTransformer(DiffusionTransformerConfig.Preset(ModelSize.Tiny, 4, 16, 3, 0));
        using var x = torch.randn(2, 3, 16, 16);
        using var p = model.Patchify(x);
        Assert.Equal(new long[] { 2, 16, 48 }, p.shape);
        using var back = model.Unpatchify(p);
        Assert.True(TestTensors.Same(x, back));
    }
}
