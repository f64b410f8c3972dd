using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// Image to patch tokens: a p×p convolution with stride p to the model width, then flattened to
/// [N, L, D] with L = (H/p)·(W/p) in row-major patch order (timm's PatchEmbed; parameter <c>proj</c>).
/// </summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    /// <summary>Patch size p.</summary>
    public int PatchSize { get; }

    /// <summary>Creates the embedding; the weight is initialised like a Linear (Xavier on [D, C·p·p]).</summary>
    public PatchEmbed(int inChannels, int hiddenSize, int patchSize) : base(nameof(PatchEmbed))
    {
        PatchSize = patchSize;
        proj = nn.Conv2d(inChannels, hiddenSize, kernel_size: patchSize, stride: patchSize, bias: true);
        RegisterComponents();
        Init.XavierUniformAsLinear(proj.weight!);
        using var _ = no_grad();
        proj.bias!.zero_();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return proj.call(x).flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }
}
