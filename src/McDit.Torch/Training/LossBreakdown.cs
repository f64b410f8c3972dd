namespace McDit.Torch.Training;

/// <summary>The terms of one training loss evaluation, as batch means (for logging).</summary>
public sealed record LossBreakdown
{
    /// <summary>The total loss that was back-propagated.</summary>
    public double Total { get; init; }
    /// <summary>EDM denoising loss of the main branch (on visible tokens when masking).</summary>
    public double Denoising { get; init; }
    /// <summary>Weighted term on masked tokens (MaskDiT MAE, or MC-DiT's reconstruction target).</summary>
    public double Masked { get; init; }
    /// <summary>Weighted MC-DiT noisy-branch loss.</summary>
    public double NoisyBranch { get; init; }
    /// <summary>Weighted MC-DiT clean-branch loss.</summary>
    public double CleanBranch { get; init; }
}
