namespace McDit.Torch.Training;

/// <summary>How the learning rate falls over a run after its warm-up (<see cref="TrainerOptions.Decay"/>).</summary>
public enum LearningRateDecay
{
    /// <summary>No decay: the learning rate stays at its peak (MaskDiT's and DiT's recipe for long runs).</summary>
    Constant,
    /// <summary>Half a cosine from the peak down to 0 at <see cref="TrainerOptions.DecaySteps"/> (for the 950-step demo it was worse than Constant).</summary>
    Cosine,
}
