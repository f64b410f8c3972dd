namespace McDit.Torch.Training;

/// <summary>Where a run stands; saved in a checkpoint's state.json so a resumed run continues exactly.</summary>
public sealed record TrainingState
{
    /// <summary>Optimizer steps taken.</summary>
    public long Step { get; set; }
    /// <summary>1 = masked pre-training, 2 = unmasking tuning.</summary>
    public int Stage { get; set; } = 1;
    /// <summary>Data epoch the next batch comes from (kept by the data feeder).</summary>
    public long Epoch { get; set; }
    /// <summary>Index of the next batch within the epoch (kept by the data feeder).</summary>
    public long BatchInEpoch { get; set; }
    /// <summary>Mean training loss of the last step.</summary>
    public double LastLoss { get; set; } = double.NaN;
}
