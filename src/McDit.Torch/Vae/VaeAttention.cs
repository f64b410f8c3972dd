using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// The single-head spatial self-attention of the VAE mid blocks (diffusers' <c>Attention</c> as
/// <c>UNetMidBlock2D</c> builds it for the SD VAE: head dimension = channels, GroupNorm before the projections,
/// residual connection). Every pixel attends to every other pixel of its image.
/// Parameters: <c>group_norm</c>, <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>.
/// </summary>
public sealed class VaeAttention : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm group_norm;
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<Linear> to_out;

    /// <summary>Creates the layer over <paramref name="channels"/> channels.</summary>
    public VaeAttention(int channels, int groups) : base(nameof(VaeAttention))
    {
        group_norm = VaeGroupNorm.Create(groups, channels);
        to_q = nn.Linear(channels, channels, hasBias: true);
        to_k = nn.Linear(channels, channels, hasBias: true);
        to_v = nn.Linear(channels, channels, hasBias: true);
        // diffusers' to_out is [Linear, Dropout]; only index 0 has parameters.
        to_out = new ModuleList<Linear>(nn.Linear(channels, channels, hasBias: true));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var tokens = group_norm.call(x).reshape(b, c, h * w).transpose(1, 2);       // [B, HW, C]
        var q = to_q.call(tokens).unsqueeze(1);                                      // [B, 1, HW, C]
        var k = to_k.call(tokens).unsqueeze(1);
        var v = to_v.call(tokens).unsqueeze(1);
        var o = nn.functional.scaled_dot_product_attention(q, k, v).squeeze(1);     // softmax(q·kᵀ/√C)·v
        var projected = to_out[0].call(o).transpose(1, 2).reshape(b, c, h, w);
        return (projected + x).MoveToOuterDisposeScope();
    }
}
