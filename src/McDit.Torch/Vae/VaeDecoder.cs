using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// The VAE decoder (diffusers' <c>Decoder</c>): <c>conv_in</c> from latent channels to the widest level, the
/// <c>mid_block</c>, one <see cref="UpDecoderBlock2D"/> per level from the widest to the narrowest (so
/// <c>up_blocks.0</c> has the channels of the last encoder level), each with <c>layers_per_block + 1</c> ResNet
/// blocks and all but the last doubling the resolution, then <c>conv_norm_out</c> → SiLU → <c>conv_out</c>.
/// </summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly VaeMidBlock2D mid_block;
    private readonly ModuleList<UpDecoderBlock2D> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;

    /// <summary>Creates the decoder of a configuration.</summary>
    public VaeDecoder(AutoencoderKLConfig config) : base(nameof(VaeDecoder))
    {
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        int groups = config.NormNumGroups;
        conv_in = nn.Conv2d(config.LatentChannels, reversed[0], 3, stride: 1, padding: 1);
        mid_block = new VaeMidBlock2D(reversed[0], groups, config.MidBlockAddAttention);
        up_blocks = new ModuleList<UpDecoderBlock2D>(Enumerable.Range(0, reversed.Length)
            .Select(i => new UpDecoderBlock2D(i == 0 ? reversed[0] : reversed[i - 1], reversed[i], config.LayersPerBlock + 1, groups,
                addUpsample: i < reversed.Length - 1)).ToArray());
        conv_norm_out = VaeGroupNorm.Create(groups, reversed[^1]);
        conv_out = nn.Conv2d(reversed[^1], config.OutChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <summary>Latents [N, latent, h, w] (after <c>post_quant_conv</c>) → images [N, C_out, h·f, w·f].</summary>
    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var h = mid_block.call(conv_in.call(z));
        foreach (var block in up_blocks) h = block.call(h);
        h = conv_out.call(nn.functional.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
