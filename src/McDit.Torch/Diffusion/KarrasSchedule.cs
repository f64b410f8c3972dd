namespace McDit.Torch.Diffusion;

/// <summary>
/// The EDM (Karras et al. 2022) time-step discretisation:
/// σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for i = 0 … N−1, followed by σ_N = 0.
/// </summary>
public static class KarrasSchedule
{
    /// <summary>Computes the N + 1 noise levels σ_0 = σ_max &gt; … &gt; σ_{N−1} = σ_min &gt; σ_N = 0, in float64.</summary>
    /// <param name="steps">Number of steps N, ≥ 1. With N = 1 the schedule is [σ_max, 0] (a single step).</param>
    /// <param name="sigmaMin">Smallest non-zero noise level, &gt; 0.</param>
    /// <param name="sigmaMax">Largest noise level, &gt; <paramref name="sigmaMin"/>.</param>
    /// <param name="rho">Exponent ρ &gt; 0; larger values spend more steps at low noise.</param>
    /// <returns>An array of <paramref name="steps"/> + 1 values, decreasing, ending in 0.</returns>
    /// <exception cref="ArgumentOutOfRangeException">When an argument is outside the range given above.</exception>
    public static double[] Sigmas(int steps, double sigmaMin = 0.002, double sigmaMax = 80, double rho = 7)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "The number of sampling steps must be at least 1, for example 18 or 40.");
        if (!(sigmaMin > 0) || !double.IsFinite(sigmaMin))
            throw new ArgumentOutOfRangeException(nameof(sigmaMin), sigmaMin, "σ_min (sigmaMin) must be a positive finite number, for example 0.002.");
        if (!(sigmaMax > sigmaMin) || !double.IsFinite(sigmaMax))
            throw new ArgumentOutOfRangeException(nameof(sigmaMax), sigmaMax,
                $"σ_max (sigmaMax) must be a finite number greater than σ_min = {sigmaMin}, for example 80.");
        if (!(rho > 0) || !double.IsFinite(rho))
            throw new ArgumentOutOfRangeException(nameof(rho), rho, "ρ (rho) must be a positive finite number, for example 7.");

        var sigmas = new double[steps + 1];
        double a = Math.Pow(sigmaMax, 1 / rho);
        double b = Math.Pow(sigmaMin, 1 / rho);
        if (steps == 1)
        {
            sigmas[0] = sigmaMax;
        }
        else
        {
            // Same order of operations as EDM / MaskDiT: (a + i / (N − 1) · (b − a)) ** ρ.
            for (int i = 0; i < steps; i++)
                sigmas[i] = Math.Pow(a + (double)i / (steps - 1) * (b - a), rho);
        }
        sigmas[steps] = 0;
        return sigmas;
    }
}
