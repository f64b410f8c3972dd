using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// A DiT block with adaLN-Zero conditioning: LayerNorm without affine, attention and MLP, each modulated by
/// (shift, scale) and gated by a per-sample gate computed from the conditioning c. The modulation linear
/// (<c>adaLN_modulation.1</c>) starts at zero, so a fresh block is the identity.
/// </summary>
public sealed class DiTBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
    private readonly Sequential adaLN_modulation;

    /// <summary>Creates a block of width <paramref name="hiddenSize"/> conditioned on a vector of width <paramref name="conditionSize"/>.</summary>
    public DiTBlock(int hiddenSize, int conditionSize, int numHeads, double mlpRatio = 4.0) : base(nameof(DiTBlock))
    {
        norm1 = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        attn = new Attention(hiddenSize, numHeads);
        norm2 = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        mlp = new Mlp(hiddenSize, (int)(hiddenSize * mlpRatio));
        var modulation = nn.Linear(conditionSize, 6 * hiddenSize, hasBias: true);
        adaLN_modulation = nn.Sequential(nn.SiLU(), modulation);
        RegisterComponents();
        Init.Zero(modulation);
    }

    /// <summary>x [N, L, D], c [N, D_c] → [N, L, D].</summary>
    public override Tensor forward(Tensor x, Tensor c)
    {
        using var scope = NewDisposeScope();
        var m = adaLN_modulation.call(c).chunk(6, 1);
        // m: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp. Each intermediate is freed as soon as it is used
        // (autograd keeps what backward needs), so inference holds one block's temporaries at a time, not all of them.
        // x + gate·f(…) is one fused multiply-add (addcmul) instead of a product and a sum.
        Tensor h;
        using (var normed = norm1.call(x))
        using (var modulated = Modulation.Modulate(normed, m[0], m[1]))
        using (var attended = attn.call(modulated))
            h = x.addcmul(m[2].unsqueeze(1), attended, Modulation.One);
        using (var normed = norm2.call(h))
        using (var modulated = Modulation.Modulate(normed, m[3], m[4]))
        using (var transformed = mlp.call(modulated))
            x = h.addcmul(m[5].unsqueeze(1), transformed, Modulation.One);
        h.Dispose();
        return x.MoveToOuterDisposeScope();
    }
}
