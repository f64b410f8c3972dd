using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>adaLN helpers shared by the DiT blocks and output layers.</summary>
public static class Modulation
{
    internal static readonly Scalar One = 1.ToScalar(); // shared, never freed: one Scalar instead of one per call

    /// <summary>x·(1 + scale) + shift, with per-sample [N, D] shift and scale broadcast over tokens of x [N, L, D].</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale)
    {
        using var scope = NewDisposeScope();
        // shift + x·(1 + scale) in one kernel (addcmul broadcasts the [N, 1, D] terms over the tokens)
        return shift.unsqueeze(1).addcmul(x, scale.unsqueeze(1).add(One), One).MoveToOuterDisposeScope();
    }
}
