using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>adaLN helpers shared by the DiT blocks and output layers.</summary>
public static class Modulation
{
    /// <summary>x·(1 + scale) + shift, with per-sample [N, D] shift and scale broadcast over tokens of x [N, L, D].</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale)
    {
        using var scope = NewDisposeScope();
        return x.mul(scale.unsqueeze(1).add(1)).add(shift.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
