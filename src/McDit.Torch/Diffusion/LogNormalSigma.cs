using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// The EDM training distribution of noise levels: ln σ ~ N(P_mean, P_std²), σ = exp(P_std·z + P_mean), z ~ N(0, 1).
/// </summary>
public sealed class LogNormalSigma
{
    /// <summary>Creates the distribution (defaults are EDM's and MaskDiT's: P_mean = −1.2, P_std = 1.2).</summary>
    /// <param name="pMean">Mean of ln σ.</param>
    /// <param name="pStd">Standard deviation of ln σ, ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">When a parameter is not finite or P_std is negative.</exception>
    public LogNormalSigma(double pMean = -1.2, double pStd = 1.2)
    {
        if (!double.IsFinite(pMean))
            throw new ArgumentOutOfRangeException(nameof(pMean), pMean, "P_mean (pMean) must be a finite number, for example -1.2.");
        if (!double.IsFinite(pStd) || pStd < 0)
            throw new ArgumentOutOfRangeException(nameof(pStd), pStd, "P_std (pStd) must be a finite number ≥ 0, for example 1.2.");
        PMean = pMean;
        PStd = pStd;
        _mean = pMean.ToScalar();
        _std = pStd.ToScalar();
    }

    // Held for the sampler's lifetime (see HeldScalars): an implicit Scalar per draw could be freed by the finalizer mid-call.
    private readonly Scalar _mean, _std;

    /// <summary>Mean of ln σ.</summary>
    public double PMean { get; }

    /// <summary>Standard deviation of ln σ.</summary>
    public double PStd { get; }

    /// <summary>Draws <paramref name="n"/> noise levels.</summary>
    /// <param name="n">Number of samples N, ≥ 1.</param>
    /// <param name="generator">
    /// A CPU generator; z is always drawn on the CPU so that a seed gives the same σ on every device. Null uses the
    /// global generator.
    /// </param>
    /// <param name="device">Device of the result; null means CPU.</param>
    /// <returns>σ, float32 [N], on <paramref name="device"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="n"/> is less than 1.</exception>
    public Tensor Sample(int n, Generator? generator = null, Device? device = null)
    {
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), n, "The number of noise levels to draw (n) must be at least 1.");
        using var scope = NewDisposeScope();
        var z = torch.randn(new long[] { n }, dtype: ScalarType.Float32, device: CPU, generator: generator);
        var sigma = (z * _std).Plus(_mean).exp();
        if (device is not null && device.type != DeviceType.CPU) sigma = sigma.to(device);
        return sigma.MoveToOuterDisposeScope();
    }
}
