using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// One decoder level (diffusers' <c>UpDecoderBlock2D</c>): ResNet blocks, then an optional <see cref="Upsample2D"/>.
/// Parameters: <c>resnets.M</c>, <c>upsamplers.0.conv</c>.
/// </summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <summary>Creates the level: <paramref name="layers"/> ResNet blocks from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public UpDecoderBlock2D(int inChannels, int outChannels, int layers, int groups, bool addUpsample) : base(nameof(UpDecoderBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups)).ToArray());
        if (addUpsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outChannels));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var resnet in resnets) h = resnet.call(h);
        if (upsamplers is not null) h = upsamplers[0].call(h);
        return h.MoveToOuterDisposeScope();
    }
}
