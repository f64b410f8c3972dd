using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// Doubles height and width by nearest-neighbour interpolation, then a 3×3 convolution (diffusers' <c>Upsample2D</c>
/// with <c>use_conv=True</c>). Parameters: <c>conv</c>.
/// </summary>
public sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
    private static readonly double[] Twice = { 2.0, 2.0 };
    private readonly Conv2d conv;

    /// <summary>Creates the layer with the same number of input and output channels.</summary>
    public Upsample2D(int channels) : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, channels, 3, stride: 1, padding: 1);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(x, scale_factor: Twice, mode: InterpolationMode.Nearest);
        return conv.call(up).MoveToOuterDisposeScope();
    }
}
