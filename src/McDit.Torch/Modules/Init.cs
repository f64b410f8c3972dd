using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>Weight initialisations of DiT (uses the global torch generator; seed it with torch.manual_seed).</summary>
internal static class Init
{
    /// <summary>Xavier-uniform with fans of the weight viewed as [out, rest] (DiT's patch-embedding init).</summary>
    public static void XavierUniformAsLinear(Tensor weight)
    {
        using var _ = no_grad();
        long fanOut = weight.shape[0], fanIn = weight.numel() / fanOut;
        double bound = Math.Sqrt(6.0 / (fanIn + fanOut));
        weight.uniform_(-bound, bound);
    }

    /// <summary>Xavier-uniform weight and zero bias, as DiT's _basic_init does for every Linear.</summary>
    public static void Linear(nn.Module<Tensor, Tensor> linear)
    {
        var l = (TorchSharp.Modules.Linear)linear;
        XavierUniformAsLinear(l.weight!);
        using var _ = no_grad();
        l.bias?.zero_();
    }

    /// <summary>Zeroes weight and bias (adaLN-Zero).</summary>
    public static void Zero(TorchSharp.Modules.Linear linear)
    {
        using var _ = no_grad();
        linear.weight!.zero_();
        linear.bias?.zero_();
    }

    /// <summary>N(0, std²) in place.</summary>
    public static void Normal(Tensor t, double std)
    {
        using var _ = no_grad();
        t.normal_(0, std);
    }
}
