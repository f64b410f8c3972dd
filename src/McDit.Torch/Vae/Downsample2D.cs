using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// Halves height and width with a 3×3 stride-2 convolution after zero padding of one column on the right and one
/// row at the bottom (diffusers' <c>Downsample2D</c> with <c>padding=0</c>, as the SD VAE encoder uses it).
/// Parameters: <c>conv</c>.
/// </summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    private static readonly long[] AsymmetricPad = { 0, 1, 0, 1 };
    private readonly Conv2d conv;

    /// <summary>Creates the layer with the same number of input and output channels.</summary>
    public Downsample2D(int channels) : base(nameof(Downsample2D))
    {
        conv = nn.Conv2d(channels, channels, 3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var padded = nn.functional.pad(x, AsymmetricPad, PaddingModes.Constant, 0.0);
        return conv.call(padded).MoveToOuterDisposeScope();
    }
}
