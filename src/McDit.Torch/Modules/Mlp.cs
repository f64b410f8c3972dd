using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>Two-layer MLP with tanh-approximated GELU (timm's Mlp: <c>fc1</c>, <c>fc2</c>).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;

    /// <summary>Creates the MLP.</summary>
    public Mlp(int inFeatures, int hiddenFeatures) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(inFeatures, hiddenFeatures, hasBias: true);
        fc2 = nn.Linear(hiddenFeatures, inFeatures, hasBias: true);
        RegisterComponents();
        Init.Linear(fc1);
        Init.Linear(fc2);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var hidden = fc1.call(x);
        using var h = nn.functional.gelu(hidden, TorchSharp.Modules.GELU.Approximate.tanh);
        return fc2.call(h).MoveToOuterDisposeScope();
    }
}
