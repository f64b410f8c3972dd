using McDit.Torch.IO;
using McDit.Torch.Tests.IO;
using McDit.Torch.Vae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Torch.Tests.Vae;

/// <summary>Construction, configs and loading of diffusers-layout VAE folders and files.</summary>
public sealed class AutoencoderKLLoadTests
{
    // The config.json of stabilityai/sd-vae-ft-mse (diffusers 0.4.2 era: no scaling_factor field).
    const string SdVaeFtMseConfig = """
        {
          "_class_name": "AutoencoderKL",
          "_diffusers_version": "0.4.2",
          "act_fn": "silu",
          "block_out_channels": [128, 256, 512, 512],
          "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
          "in_channels": 3,
          "latent_channels": 4,
          "layers_per_block": 2,
          "norm_num_groups": 32,
          "out_channels": 3,
          "sample_size": 256,
          "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
        }
        """;

    // A four-level (f = 8) VAE small enough for a unit test.
    const string TinyF8Config = """
        {
          "_class_name": "AutoencoderKL",
          "act_fn": "silu",
          "block_out_channels": [8, 8, 16, 16],
          "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
          "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
          "in_channels": 3,
          "out_channels": 3,
          "latent_channels": 4,
          "layers_per_block": 1,
          "norm_num_groups": 4,
          "sample_size": 32,
          "scaling_factor": 0.18215
        }
        """;

    static AutoencoderKL RandomTiny(ulong seed = 3)
    {
        torch.manual_seed((long)seed);
        var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(TinyF8Config));
        vae.eval();
        return vae;
    }

    static Tensor Images(long n = 2, int size = 32)
    {
        using var g = new Generator(11, torch.CPU);
        return torch.rand(new long[] { n, 3, size, size }, generator: g) * 2 - 1;
    }

    /// <summary>Writes a diffusers folder by hand: config.json and the state dict with SafeTensors.Save.</summary>
    static void WriteFolder(string folder, string configJson, Dictionary<string, Tensor> weights)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), configJson);
        SafeTensors.Save(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), weights);
    }

    [Fact]
    public void StableDiffusionPresetHasTheParameterCountOfDiffusers()
    {
        using var vae = new AutoencoderKL(AutoencoderKLConfig.StableDiffusion);
        Assert.Equal(83_653_863, vae.ParameterCount());
        var names = vae.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 512, 512, 3, 3 }, names["decoder.up_blocks.0.upsamplers.0.conv.weight"]);
        Assert.Equal(new long[] { 128, 256, 1, 1 }, names["decoder.up_blocks.3.resnets.0.conv_shortcut.weight"]);
        Assert.Equal(new long[] { 128, 128, 3, 3 }, names["decoder.up_blocks.3.resnets.2.conv2.weight"]);
        Assert.Equal(new long[] { 512, 512 }, names["encoder.mid_block.attentions.0.to_out.0.weight"]);
        Assert.Equal(new long[] { 8, 512, 3, 3 }, names["encoder.conv_out.weight"]);
        Assert.Equal(new long[] { 8, 8, 1, 1 }, names["quant_conv.weight"]);
        Assert.Equal(new long[] { 4, 4, 1, 1 }, names["post_quant_conv.weight"]);
        Assert.Contains("encoder.down_blocks.2.downsamplers.0.conv.bias", names.Keys);
        Assert.DoesNotContain(names.Keys, k => k.StartsWith("encoder.down_blocks.3.downsamplers", StringComparison.Ordinal));
        Assert.DoesNotContain(names.Keys, k => k.StartsWith("decoder.up_blocks.3.upsamplers", StringComparison.Ordinal));
    }

    [Fact]
    public void FreshModelHasPyTorchsGroupNormInitAndFiniteOutputs()
    {
        // TorchSharp 0.107's nn.GroupNorm leaves weight and bias uninitialised; the VAE sets them to 1 and 0.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var vae = RandomTiny();
        var norms = vae.named_parameters().Where(p => p.name.Contains("norm")).ToList();
        Assert.NotEmpty(norms);
        foreach (var (name, p) in norms)
            Assert.True(TestTensors.Same(p, name.EndsWith(".weight") ? torch.ones_like(p) : torch.zeros_like(p)), name);
        Assert.True(vae.call(Images(1)).isfinite().all().item<bool>());
    }

    [Fact]
    public void SdVaeFtMseConfigReadsAsThePreset()
    {
        var config = AutoencoderKLConfig.FromJson(SdVaeFtMseConfig, "sd-vae-ft-mse/config.json");
        var preset = AutoencoderKLConfig.StableDiffusion;
        Assert.Equal(preset.BlockOutChannels, config.BlockOutChannels);
        Assert.Equal((preset.LayersPerBlock, preset.LatentChannels, preset.NormNumGroups, preset.SampleSize),
            (config.LayersPerBlock, config.LatentChannels, config.NormNumGroups, config.SampleSize));
        Assert.Equal(0.18215, config.ScalingFactor);
        Assert.Equal(8, config.DownsamplingFactor);
        var again = AutoencoderKLConfig.FromJson(preset.ToJson());
        Assert.Equal(preset.BlockOutChannels, again.BlockOutChannels);
        Assert.Equal(preset.DownBlockTypes, again.DownBlockTypes);
        Assert.Contains("\"_class_name\": \"AutoencoderKL\"", preset.ToJson());
    }

    [Fact]
    public void UnsupportedConfigIsNamed()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            AutoencoderKLConfig.FromJson(SdVaeFtMseConfig.Replace("\"silu\"", "\"relu\""), "vae/config.json"));
        Assert.Contains("vae/config.json", e.Message);
        Assert.Contains("act_fn", e.Message);
        e = Assert.Throws<InvalidDataException>(() =>
            AutoencoderKLConfig.FromJson(TinyF8Config.Replace("\"norm_num_groups\": 4", "\"norm_num_groups\": 3"), "c"));
        Assert.Contains("block_out_channels", e.Message);
    }

    [Fact]
    public void DiffusersFolderLoadsAndRunsEncodeThenDecode()
    {
        using var tmp = new TempFolder();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var source = RandomTiny();
        var folder = Path.Combine(tmp.Path, "vae");
        WriteFolder(folder, TinyF8Config, source.state_dict());

        using var vae = AutoencoderKL.Load(folder);
        var x = Images();
        var (mean, logVar) = vae.Encode(x);
        Assert.Equal(new long[] { 2, 4, 4, 4 }, mean.shape);
        Assert.Equal(new long[] { 2, 4, 4, 4 }, logVar.shape);
        var latents = vae.EncodeLatents(x);
        Assert.Equal(new long[] { 2, 4, 4, 4 }, latents.shape);
        var images = vae.DecodeLatents(latents);
        Assert.Equal(new long[] { 2, 3, 32, 32 }, images.shape);
        Assert.True(TestTensors.Same(images, source.DecodeLatents(source.EncodeLatents(x))));

        // Save writes the same layout, and a single file with a config.json beside it loads too.
        var saved = Path.Combine(tmp.Path, "saved");
        vae.Save(saved);
        using var fromFile = AutoencoderKL.Load(Path.Combine(saved, AutoencoderKL.WeightsFileName));
        Assert.True(TestTensors.Same(fromFile.Decode(mean), vae.Decode(mean)));
    }

    [Fact]
    public void LegacyAttentionNamesLoad()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var source = RandomTiny();
        var renamed = source.state_dict().ToDictionary(
            kv => kv.Key.Replace(".to_q.", ".query.").Replace(".to_k.", ".key.").Replace(".to_v.", ".value.").Replace(".to_out.0.", ".proj_attn."),
            kv => kv.Value);
        Assert.Contains("encoder.mid_block.attentions.0.proj_attn.weight", renamed.Keys);
        using var vae = new AutoencoderKL(source.Config);
        vae.LoadWeights(renamed, "legacy");
        vae.eval();
        var x = Images(1);
        var a = vae.call(x); var b = source.call(x);
        Assert.True(TestTensors.Same(a, b), $"relative error {TestTensors.RelativeError(a, b)}");
    }

    [Fact]
    public void MissingTensorIsNamedWithTheFile()
    {
        using var tmp = new TempFolder();
        using var source = RandomTiny();
        var weights = source.state_dict();
        weights.Remove("decoder.up_blocks.1.resnets.1.conv2.weight");
        var folder = Path.Combine(tmp.Path, "vae");
        WriteFolder(folder, TinyF8Config, weights);
        var e = Assert.Throws<InvalidDataException>(() => AutoencoderKL.Load(folder));
        Assert.Contains(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), e.Message);
        Assert.Contains("missing 1 tensor(s): 'decoder.up_blocks.1.resnets.1.conv2.weight' (expected [16, 16, 3, 3])", e.Message);
    }

    [Fact]
    public void WrongShapeIsNamedWithBothShapes()
    {
        using var tmp = new TempFolder();
        using var source = RandomTiny();
        var weights = source.state_dict();
        weights["encoder.conv_in.weight"] = torch.zeros(8, 4, 3, 3);
        var path = tmp.File("vae.safetensors");
        SafeTensors.Save(path, weights, new Dictionary<string, string> { ["config"] = TinyF8Config });
        var e = Assert.Throws<InvalidDataException>(() => AutoencoderKL.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'encoder.conv_in.weight': expected [8, 3, 3, 3], found [8, 4, 3, 3]", e.Message);
    }

    [Fact]
    public void WeightsWithoutConfigAreRefused()
    {
        using var tmp = new TempFolder();
        using var source = RandomTiny();
        var path = tmp.File("vae.safetensors");
        SafeTensors.Save(path, source.state_dict());
        var e = Assert.Throws<FileNotFoundException>(() => AutoencoderKL.Load(path));
        Assert.Contains("config", e.Message);
        using var withConfig = AutoencoderKL.Load(path, source.Config);
        Assert.Equal(source.ParameterCount(), withConfig.ParameterCount());
    }
}
