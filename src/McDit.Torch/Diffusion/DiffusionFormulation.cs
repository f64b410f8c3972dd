namespace McDit.Torch.Diffusion;

/// <summary>What a network's output means and how it is conditioned on the noise level.</summary>
public enum DiffusionFormulation
{
    /// <summary>
    /// EDM (Karras et al. 2022), as McDit and MaskDiT train: D(x; σ) = c_skip·x + c_out·F(c_in·x, ln σ / 4, y), σ_data 0.5.
    /// </summary>
    Edm,
    /// <summary>
    /// DiT's variance-preserving DDPM: the network takes x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε and the timestep t ∈ [0, 1000) of
    /// the linear β schedule (10⁻⁴ to 0.02) and predicts ε (and, with learned sigma, the variance interpolation v).
    /// </summary>
    VpEpsilon,
}
