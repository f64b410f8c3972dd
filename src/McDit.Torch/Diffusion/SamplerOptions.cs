namespace McDit.Torch.Diffusion;

/// <summary>Settings of <see cref="EdmSampler"/>; the defaults are EDM's and MaskDiT's (18 Heun steps, ρ = 7, σ ∈ [0.002, 80]).</summary>
public sealed class SamplerOptions
{
    /// <summary>Number of steps N, ≥ 1 (MaskDiT uses 40 for ImageNet; 18 is enough for small data).</summary>
    public int Steps { get; set; } = 18;

    /// <summary>The ODE solver.</summary>
    public SamplerSolver Solver { get; set; } = SamplerSolver.Heun;

    /// <summary>Smallest non-zero noise level σ_min, &gt; 0.</summary>
    public double SigmaMin { get; set; } = 0.002;

    /// <summary>Largest noise level σ_max, where sampling starts; &gt; <see cref="SigmaMin"/>.</summary>
    public double SigmaMax { get; set; } = 80;

    /// <summary>Exponent ρ of the Karras schedule, &gt; 0.</summary>
    public double Rho { get; set; } = 7;

    /// <summary>
    /// Classifier-free guidance scale s: D = D_uncond + s·(D_cond − D_uncond). 1 means no guidance (one conditional
    /// evaluation); any other value needs labels and <see cref="NullLabel"/>.
    /// </summary>
    public double GuidanceScale { get; set; } = 1.0;

    /// <summary>The label of the unconditional class (C for C classes); required when <see cref="GuidanceScale"/> ≠ 1.</summary>
    public int? NullLabel { get; set; }

    /// <summary>
    /// Guidance applies only at noise levels σ with <see cref="GuidanceSigmaMin"/> &lt; σ ≤ <see cref="GuidanceSigmaMax"/>
    /// (Kynkäänniemi et al., NeurIPS 2024, "Applying guidance in a limited interval"); elsewhere the sampler evaluates the
    /// conditional denoiser alone, at half the cost. Default 0: every step is guided.
    /// </summary>
    public double GuidanceSigmaMin { get; set; }

    /// <summary>Upper end of the guidance interval (see <see cref="GuidanceSigmaMin"/>); default +∞.</summary>
    public double GuidanceSigmaMax { get; set; } = double.PositiveInfinity;

    /// <summary>
    /// Pixels by which every other denoiser evaluation sees the image rolled along both spatial axes (its output rolled
    /// back): for a patch model, half the patch size puts the patch borders of odd evaluations in the middle of the even
    /// ones' patches, so no border stays in one place for the whole trajectory. 0 (default): no shift. Needs [N, C, H, W]
    /// inputs; costs nothing but two rolls per evaluation.
    /// </summary>
    public int AlternatingShift { get; set; }

    /// <summary>
    /// The shift applies only at noise levels σ up to this (default +∞: at every evaluation). At high σ a shifted image is
    /// an off-centre one to the denoiser, which moves the content; late in the trajectory only local detail changes.
    /// </summary>
    public double AlternatingShiftSigmaMax { get; set; } = double.PositiveInfinity;

    /// <summary>True when the sampler evaluates the denoiser on a doubled, conditional + unconditional batch (at some steps).</summary>
    public bool UsesGuidance => GuidanceScale != 1.0;

    /// <summary>True when an evaluation at noise level <paramref name="sigma"/> is guided.</summary>
    public bool GuidesAt(double sigma) => UsesGuidance && sigma > GuidanceSigmaMin && sigma <= GuidanceSigmaMax;

    /// <summary>Checks every setting and throws an exception that names the option and the expected range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When a setting is outside its range.</exception>
    /// <exception cref="ArgumentException">When guidance is requested without a null label.</exception>
    public void Validate()
    {
        if (Steps < 1)
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "SamplerOptions.Steps must be at least 1, for example 18 or 40.");
        if (!Enum.IsDefined(Solver))
            throw new ArgumentOutOfRangeException(nameof(Solver), Solver, "SamplerOptions.Solver must be Heun, Euler or Ddpm.");
        if (!(SigmaMin > 0) || !double.IsFinite(SigmaMin))
            throw new ArgumentOutOfRangeException(nameof(SigmaMin), SigmaMin, "SamplerOptions.SigmaMin must be a positive finite number, for example 0.002.");
        if (!(SigmaMax > SigmaMin) || !double.IsFinite(SigmaMax))
            throw new ArgumentOutOfRangeException(nameof(SigmaMax), SigmaMax,
                $"SamplerOptions.SigmaMax must be a finite number greater than SigmaMin = {SigmaMin}, for example 80.");
        if (!(Rho > 0) || !double.IsFinite(Rho))
            throw new ArgumentOutOfRangeException(nameof(Rho), Rho, "SamplerOptions.Rho must be a positive finite number, for example 7.");
        if (!double.IsFinite(GuidanceScale))
            throw new ArgumentOutOfRangeException(nameof(GuidanceScale), GuidanceScale,
                "SamplerOptions.GuidanceScale must be a finite number (1 = no guidance, 1.5 is MaskDiT's FID setting).");
        if (!(GuidanceSigmaMin >= 0) || double.IsPositiveInfinity(GuidanceSigmaMin))
            throw new ArgumentOutOfRangeException(nameof(GuidanceSigmaMin), GuidanceSigmaMin,
                "SamplerOptions.GuidanceSigmaMin must be a finite σ ≥ 0 (0: guide down to the last step; 0.28 is Kynkäänniemi et al.'s EDM2 setting).");
        if (!(GuidanceSigmaMax > GuidanceSigmaMin))
            throw new ArgumentOutOfRangeException(nameof(GuidanceSigmaMax), GuidanceSigmaMax,
                $"SamplerOptions.GuidanceSigmaMax must be greater than GuidanceSigmaMin = {GuidanceSigmaMin} (+∞: no upper end).");
        if (AlternatingShift < 0)
            throw new ArgumentOutOfRangeException(nameof(AlternatingShift), AlternatingShift,
                "SamplerOptions.AlternatingShift must be ≥ 0 pixels (0: no shift; half the patch size for a patch model).");
        if (!(AlternatingShiftSigmaMax > 0))
            throw new ArgumentOutOfRangeException(nameof(AlternatingShiftSigmaMax), AlternatingShiftSigmaMax,
                "SamplerOptions.AlternatingShiftSigmaMax must be a σ > 0 (+∞: shift at every other evaluation).");
        if (NullLabel is < 0)
            throw new ArgumentOutOfRangeException(nameof(NullLabel), NullLabel,
                "SamplerOptions.NullLabel must be ≥ 0 (the number of classes C, by this project's convention).");
        if (UsesGuidance && NullLabel is null)
            throw new ArgumentException(
                $"SamplerOptions.GuidanceScale = {GuidanceScale} asks for classifier-free guidance, which needs SamplerOptions.NullLabel " +
                "(the unconditional label, C for C classes). Set NullLabel, or set GuidanceScale to 1 for no guidance.",
                nameof(NullLabel));
    }
}
