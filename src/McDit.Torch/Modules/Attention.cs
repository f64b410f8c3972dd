using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>Multi-head self-attention with a fused qkv projection (timm's Attention: <c>qkv</c>, <c>proj</c>).</summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly int _heads;

    /// <summary>Creates the layer; width must be divisible by the number of heads.</summary>
    public Attention(int dim, int numHeads) : base(nameof(Attention))
    {
        if (dim % numHeads != 0)
            throw new ArgumentException($"Attention width {dim} is not divisible by {numHeads} heads.", nameof(numHeads));
        _heads = numHeads;
        qkv = nn.Linear(dim, dim * 3, hasBias: true);
        proj = nn.Linear(dim, dim, hasBias: true);
        RegisterComponents();
        Init.Linear(qkv);
        Init.Linear(proj);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], n = x.shape[1], c = x.shape[2];
        Tensor o;
        using (var projected = qkv.call(x))
        using (var parts = projected.reshape(b, n, 3, _heads, c / _heads).permute(2, 0, 3, 1, 4))
            o = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        using var merged = o.transpose(1, 2).reshape(b, n, c);
        o.Dispose();
        return proj.call(merged).MoveToOuterDisposeScope();
    }
}
