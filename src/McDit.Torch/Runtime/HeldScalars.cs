using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Runtime;

/// <summary>
/// Tensor sums and differences without TorchSharp's temporary Scalars. <c>a + b</c> is <c>a.add(b, 1)</c>: the 1 becomes a native
/// Scalar that only a finalizer frees, and it is unreachable once its handle is read, so a garbage collection on another
/// thread (the second batch half, the data reader) can free it while libtorch still reads it (a training run failed with
/// "toFloat" from add_Tensor). These helpers pass one shared Scalar that lives as long as the process.
/// </summary>
internal static class HeldScalars
{
    /// <summary>The Scalar 1, shared and never freed.</summary>
    internal static readonly Scalar One = 1.ToScalar();

    /// <summary>a + b.</summary>
    internal static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a − b (TorchSharp's sub of two tensors makes no Scalar; here for symmetry with <see cref="Plus(Tensor, Tensor)"/>).</summary>
    internal static Tensor Minus(this Tensor a, Tensor b) => a.sub(b);

    /// <summary>a + s for a held Scalar s.</summary>
    internal static Tensor Plus(this Tensor a, Scalar s) => a.add(s, One);

    /// <summary>1 − a.</summary>
    internal static Tensor OneMinus(this Tensor a) => a.neg().add_(One, One);
}
