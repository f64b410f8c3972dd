using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// adaLN (shift, scale) on a LayerNorm without affine, then a Linear. As DiT's final layer
/// (<c>norm_final</c>, <c>linear</c> to p·p·C_out) and as MaskDiT's encoder→decoder projection
/// (<c>norm_decoder</c>, <c>linear</c> to the decoder width); both start at zero.
/// </summary>
public sealed class FinalLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear linear;
    private readonly Sequential adaLN_modulation;

    /// <summary>Creates the layer. <paramref name="normName"/> is the LayerNorm's name (no parameters): norm_final or norm_decoder.</summary>
    public FinalLayer(int hiddenSize, int conditionSize, int outFeatures, string normName = "norm_final") : base(nameof(FinalLayer))
    {
        linear = nn.Linear(hiddenSize, outFeatures, hasBias: true);
        var modulation = nn.Linear(conditionSize, 2 * hiddenSize, hasBias: true);
        adaLN_modulation = nn.Sequential(nn.SiLU(), modulation);
        RegisterComponents();
        register_module(normName, nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false));
        Init.Zero(modulation);
        Init.Zero(linear);
        _norm = (LayerNorm)named_children().First(c => c.name == normName).module;
    }

    private readonly LayerNorm _norm;

    /// <summary>x [N, L, D], c [N, D_c] → [N, L, out].</summary>
    public override Tensor forward(Tensor x, Tensor c)
    {
        using var scope = NewDisposeScope();
        var m = adaLN_modulation.call(c).chunk(2, 1); // shift, scale
        return linear.call(Modulation.Modulate(_norm.call(x), m[0], m[1])).MoveToOuterDisposeScope();
    }
}
