using McDit.Torch.Diffusion;
using McDit.Torch.Training;
using TorchSharp;

namespace McDit.MLNet.Trainers;

/// <summary>
/// What <see cref="McDitTrainer.Options.StepCallback"/> receives after every optimizer step: where the run stands,
/// the loss terms, and access to the current weight EMA for progress samples.
/// </summary>
public sealed class McDitTrainingStep
{
    private readonly DiffusionTrainer _trainer;

    internal McDitTrainingStep(DiffusionTrainer trainer, long totalSteps, LossBreakdown loss, TimeSpan elapsed, IReadOnlyList<string>? classNames, int numberOfClasses)
    {
        _trainer = trainer;
        TotalSteps = totalSteps;
        Loss = loss;
        Elapsed = elapsed;
        ClassNames = classNames;
        NumberOfClasses = numberOfClasses;
    }

    /// <summary>Optimizer steps taken so far (this one included).</summary>
    public long Step => _trainer.State.Step;
    /// <summary>Steps the run will take in all (masked pre-training and unmasking tuning).</summary>
    public long TotalSteps { get; }
    /// <summary>The data epoch this step's batch came from.</summary>
    public long Epoch => _trainer.State.Epoch;
    /// <summary>1 = masked pre-training, 2 = unmasking tuning.</summary>
    public int Stage => _trainer.State.Stage;
    /// <summary>The loss terms of this step.</summary>
    public LossBreakdown Loss { get; }
    /// <summary>Learning rate in force.</summary>
    public double LearningRate => _trainer.Optimizer.LearningRate;
    /// <summary>Time since Fit started (this process).</summary>
    public TimeSpan Elapsed { get; }
    /// <summary>Class names from the label column's key values, when it has them.</summary>
    public IReadOnlyList<string>? ClassNames { get; }
    /// <summary>Number of classes (0: unconditional).</summary>
    public int NumberOfClasses { get; }

    /// <summary>
    /// Samples from the current weight EMA: one per entry of <paramref name="classes"/> (null: unconditional),
    /// float32 [N, C, H, W] in the model's scale ([-1, 1] for pixels), on the CPU. The caller disposes it.
    /// </summary>
    public torch.Tensor Generate(IReadOnlyList<int>? classes, int count, long seed, SamplerOptions? sampler = null) =>
        _trainer.Generate(classes, count, seed, sampler ?? new SamplerOptions());
}
