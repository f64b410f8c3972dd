using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// The VAE encoder (diffusers' <c>Encoder</c> with <c>double_z=True</c>): <c>conv_in</c>, one
/// <see cref="DownEncoderBlock2D"/> per level (all but the last halve the resolution), the <c>mid_block</c>,
/// <c>conv_norm_out</c> → SiLU → <c>conv_out</c> to 2·latent channels (mean and log-variance).
/// </summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly ModuleList<DownEncoderBlock2D> down_blocks;
    private readonly VaeMidBlock2D mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;

    /// <summary>Creates the encoder of a configuration.</summary>
    public VaeEncoder(AutoencoderKLConfig config) : base(nameof(VaeEncoder))
    {
        var channels = config.BlockOutChannels;
        int groups = config.NormNumGroups;
        conv_in = nn.Conv2d(config.InChannels, channels[0], 3, stride: 1, padding: 1);
        down_blocks = new ModuleList<DownEncoderBlock2D>(Enumerable.Range(0, channels.Count)
            .Select(i => new DownEncoderBlock2D(i == 0 ? channels[0] : channels[i - 1], channels[i], config.LayersPerBlock, groups,
                addDownsample: i < channels.Count - 1)).ToArray());
        mid_block = new VaeMidBlock2D(channels[^1], groups, config.MidBlockAddAttention);
        conv_norm_out = VaeGroupNorm.Create(groups, channels[^1]);
        conv_out = nn.Conv2d(channels[^1], 2 * config.LatentChannels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <summary>Images [N, C_in, H, W] → moments [N, 2·latent, H/f, W/f] (before <c>quant_conv</c>).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.call(x);
        foreach (var block in down_blocks) h = block.call(h);
        h = mid_block.call(h);
        h = conv_out.call(nn.functional.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
