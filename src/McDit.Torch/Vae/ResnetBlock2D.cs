using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// The VAE's pre-activation ResNet block without time embedding (diffusers' <c>ResnetBlock2D</c> with
/// <c>temb_channels=None</c>): GroupNorm → SiLU → 3×3 conv, twice, plus a 1×1 <c>conv_shortcut</c> when the channel
/// count changes. Parameters: <c>norm1</c>, <c>conv1</c>, <c>norm2</c>, <c>conv2</c>, <c>conv_shortcut</c>.
/// </summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly GroupNorm norm2;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;

    /// <summary>Creates the block; both channel counts must be divisible by <paramref name="groups"/>.</summary>
    public ResnetBlock2D(int inChannels, int outChannels, int groups) : base(nameof(ResnetBlock2D))
    {
        norm1 = VaeGroupNorm.Create(groups, inChannels);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1);
        norm2 = VaeGroupNorm.Create(groups, outChannels);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, 1);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(nn.functional.silu(norm1.call(x)));
        h = conv2.call(nn.functional.silu(norm2.call(h)));
        var shortcut = conv_shortcut is null ? x : conv_shortcut.call(x);
        return (shortcut + h).MoveToOuterDisposeScope();
    }
}
