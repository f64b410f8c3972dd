using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// The mid block at the lowest resolution (diffusers' <c>UNetMidBlock2D</c> without time embedding): a ResNet block,
/// then for each attention layer attention followed by another ResNet block.
/// Parameters: <c>resnets.0</c>, <c>resnets.1</c>, <c>attentions.0</c> (absent without attention).
/// </summary>
public sealed class VaeMidBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<VaeAttention>? attentions;

    /// <summary>Creates the block over <paramref name="channels"/> channels.</summary>
    public VaeMidBlock2D(int channels, int groups, bool addAttention) : base(nameof(VaeMidBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(new ResnetBlock2D(channels, channels, groups), new ResnetBlock2D(channels, channels, groups));
        if (addAttention) attentions = new ModuleList<VaeAttention>(new VaeAttention(channels, groups));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].call(x);
        if (attentions is not null) h = attentions[0].call(h);
        h = resnets[1].call(h);
        return h.MoveToOuterDisposeScope();
    }
}
