using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// One encoder level (diffusers' <c>DownEncoderBlock2D</c>): ResNet blocks, then an optional <see cref="Downsample2D"/>.
/// Parameters: <c>resnets.M</c>, <c>downsamplers.0.conv</c>.
/// </summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <summary>Creates the level: <paramref name="layers"/> ResNet blocks from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public DownEncoderBlock2D(int inChannels, int outChannels, int layers, int groups, bool addDownsample) : base(nameof(DownEncoderBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups)).ToArray());
        if (addDownsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outChannels));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var resnet in resnets) h = resnet.call(h);
        if (downsamplers is not null) h = downsamplers[0].call(h);
        return h.MoveToOuterDisposeScope();
    }
}
