using System.Text.Json.Serialization;

namespace McDit.Torch.Training;

/// <summary>Where a run stands; saved in a checkpoint's state.json so a resumed run continues exactly.</summary>
public sealed record TrainingState
{
    /// <summary>Optimizer steps taken.</summary>
    [JsonRequired] public long Step { get; set; }
    /// <summary>1 = masked pre-training, 2 = unmasking tuning.</summary>
    [JsonRequired] public int Stage { get; set; } = 1;
    /// <summary>Data epoch the next batch comes from (kept by the data feeder).</summary>
    [JsonRequired] public long Epoch { get; set; }
    /// <summary>Index of the next batch within the epoch (kept by the data feeder).</summary>
    [JsonRequired] public long BatchInEpoch { get; set; }
    /// <summary>Mean training loss of the last step.</summary>
    public double LastLoss { get; set; } = double.NaN;

    /// <summary>Checks the values read from <paramref name="source"/> (a state.json) and returns the state.</summary>
    /// <exception cref="InvalidDataException">A value is out of range; the message names the file and the field.</exception>
    public TrainingState Validated(string source)
    {
        void Require(bool ok, string field, object value, string expected)
        {
            if (!ok) throw new InvalidDataException($"{source}: {field} = {value} is invalid: expected {expected}. The checkpoint is damaged; resume from an older one.");
        }
        Require(Step >= 0, nameof(Step), Step, "≥ 0");
        Require(Stage is 1 or 2, nameof(Stage), Stage, "1 (masked pre-training) or 2 (unmasking tuning)");
        Require(Epoch >= 0 && Epoch <= Step, nameof(Epoch), Epoch, $"0..{Step} (at most one epoch per step)");
        Require(BatchInEpoch >= 0 && BatchInEpoch <= Step, nameof(BatchInEpoch), BatchInEpoch, $"0..{Step} (the step count)");
        Require(Step == 0 || double.IsFinite(LastLoss), nameof(LastLoss), LastLoss, "a finite loss (training stops on a non-finite one)");
        return this;
    }
}
