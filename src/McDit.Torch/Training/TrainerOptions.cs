namespace McDit.Torch.Training;

/// <summary>Optimisation settings of a training run (method.md §5); the objective's switches are in <see cref="Method"/>.</summary>
public sealed record TrainerOptions
{
    /// <summary>The training method and its switches.</summary>
    [System.Text.Json.Serialization.JsonRequired] public MethodOptions Method { get; init; } = MethodOptions.For(TrainingMethod.McDiT);
    /// <summary>AdamW learning rate (MaskDiT: 1e-4; up to 3e-4 for tiny models). Halved for unmasking tuning.</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>
    /// Steps over which the learning rate rises linearly from <see cref="LearningRate"/>/N to its peak at the start of
    /// the run; 0 starts at the peak.
    /// </summary>
    public long WarmupSteps { get; init; }
    /// <summary>How the learning rate falls after the warm-up; <see cref="LearningRateDecay.Constant"/> keeps it.</summary>
    public LearningRateDecay Decay { get; init; } = LearningRateDecay.Constant;
    /// <summary>The step at which a <see cref="LearningRateDecay.Cosine"/> decay reaches 0: the run's total steps (both stages).</summary>
    public long DecaySteps { get; init; }
    /// <summary>AdamW decoupled weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>AdamW β1.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β2.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>Decay of the weight EMA used for sampling (0.9999 for long runs, 0.999 for short ones).</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Clip the global gradient norm to this value; 0 disables clipping.</summary>
    public double GradClipNorm { get; init; }
    /// <summary>Seed of the initialisation and of every random draw of training.</summary>
    public long Seed { get; init; }
    /// <summary>Device name: cpu, cuda, cuda:N or auto.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>Precision of the network's forward and backward passes.</summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Float32;

    /// <summary>True when the learning rate changes from step to step (a warm-up or a decay).</summary>
    public bool HasSchedule => WarmupSteps > 0 || Decay != LearningRateDecay.Constant;

    /// <summary>
    /// The learning rate of the optimizer step taken at <paramref name="step"/> (0-based: the steps taken before it) in
    /// <paramref name="stage"/>: the peak <see cref="LearningRate"/>, halved in stage 2 (unmasking tuning), times the
    /// warm-up's and the decay's factors. A function of the step alone, so a resumed run follows it exactly.
    /// </summary>
    public double LearningRateAt(long step, int stage)
    {
        double rate = stage == 2 ? LearningRate / 2 : LearningRate;
        if (WarmupSteps > 0 && step < WarmupSteps) rate *= (step + 1) / (double)WarmupSteps;
        if (Decay == LearningRateDecay.Cosine)
        {
            double progress = Math.Clamp(step / (double)DecaySteps, 0, 1);
            // Never exactly 0: AdamW takes a step, and the last steps still move the weights a little.
            rate *= Math.Max(0.5 * (1 + Math.Cos(Math.PI * progress)), 1e-3);
        }
        return rate;
    }

    /// <summary>
    /// The optimizer's layout; null chooses by device (flat on a GPU, per parameter on a CPU). For tests, which run the
    /// GPU's flat layout on the CPU; not saved with a checkpoint.
    /// </summary>
    internal AdamWLayout? OptimizerLayout { get; init; }

    /// <summary>Checks every value and returns the options; throws naming the option otherwise.</summary>
    public TrainerOptions Validated()
    {
        static void Require(bool ok, string name, object value, string expected)
        {
            if (!ok) throw new ArgumentException($"Training option {name} = {value} is invalid: expected {expected}.", name);
        }
        Require(Method is not null, nameof(Method), "null", "the method's options");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a positive number");
        Require(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, "≥ 0 steps (0: no warm-up)");
        Require(Enum.IsDefined(Decay), nameof(Decay), Decay, "Constant or Cosine");
        Require(Decay != LearningRateDecay.Cosine || DecaySteps >= 1, nameof(DecaySteps), DecaySteps, "≥ 1 (the run's total steps) for a cosine decay");
        Require(DecaySteps >= 0, nameof(DecaySteps), DecaySteps, "≥ 0");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "a finite value ≥ 0");
        Require(Beta1 >= 0 && Beta1 < 1, nameof(Beta1), Beta1, "a value in [0, 1)");
        Require(Beta2 >= 0 && Beta2 < 1, nameof(Beta2), Beta2, "a value in [0, 1)");
        Require(EmaDecay >= 0 && EmaDecay <= 1, nameof(EmaDecay), EmaDecay, "a value in [0, 1]");
        Require(GradClipNorm >= 0 && double.IsFinite(GradClipNorm), nameof(GradClipNorm), GradClipNorm, "a finite value ≥ 0 (0 = no clipping)");
        Require(Enum.IsDefined(Precision), nameof(Precision), Precision, "Float32 or BFloat16");
        Method!.Validated();
        return this;
    }
}
