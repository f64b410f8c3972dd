using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>Creates the GroupNorm layers of the VAE.</summary>
internal static class VaeGroupNorm
{
    /// <summary>The epsilon of every GroupNorm of the SD VAE.</summary>
    public const double Eps = 1e-6;

    /// <summary>
    /// An affine GroupNorm with PyTorch's initialisation (weight 1, bias 0). TorchSharp 0.107's <c>nn.GroupNorm</c>
    /// leaves its affine parameters uninitialised (they can hold huge values or NaN), so they are set here.
    /// </summary>
    public static GroupNorm Create(int groups, int channels)
    {
        var norm = nn.GroupNorm(groups, channels, Eps, affine: true);
        using var _ = no_grad();
        norm.weight!.fill_(1.0);
        norm.bias!.zero_();
        return norm;
    }
}
