using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>adaLN helpers shared by the DiT blocks and output layers.</summary>
public static class Modulation
{
    internal static Scalar One => HeldScalars.One; // shared, never freed: one Scalar instead of one per call

    /// <summary>x·(1 + scale) + shift, with per-sample [N, D] shift and scale broadcast over tokens of x [N, L, D].</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale)
    {
        using var scope = NewDisposeScope();
        // shift + x·(1 + scale) in one kernel (addcmul broadcasts the [N, 1, D] terms over the tokens)
        // add(One, One), not add(One): TorchSharp's add(Scalar) makes a temporary alpha Scalar whose finalizer can free it
        // while libtorch still reads it (a training run once failed at step 386 with "toFloat" from add_Scalar).
        return shift.unsqueeze(1).addcmul(x, scale.unsqueeze(1).add(One, One), One).MoveToOuterDisposeScope();
    }
}
