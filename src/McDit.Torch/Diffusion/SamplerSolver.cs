namespace McDit.Torch.Diffusion;

/// <summary>The ODE solver an <see cref="EdmSampler"/> uses.</summary>
public enum SamplerSolver
{
    /// <summary>Heun's 2nd-order method (EDM Algorithm 2 without churn); the last step, to σ = 0, is Euler. 2N − 1 evaluations.</summary>
    Heun,
    /// <summary>Euler's 1st-order method; N evaluations.</summary>
    Euler,
    /// <summary>
    /// DiT's ancestral DDPM sampler on N respaced steps of the 1000-step schedule (<see cref="DdpmSampler"/>), for networks
    /// of the <see cref="DiffusionFormulation.VpEpsilon"/> formulation (DiT's weights); N evaluations (DiT uses 250).
    /// </summary>
    Ddpm,
}
