using McDit.MLNet.Generation;
using McDit.Torch.Runtime;
using McDit.Torch.Training;

namespace Microsoft.ML;

public sealed partial class McDitCatalog
{
    /// <summary>
    /// Turns a training checkpoint folder (as <c>McDitTrainer.Options.CheckpointFolder</c> or <c>mcdit train</c> write
    /// them) into a generator, for sampling from a run that is still going or was interrupted. The generator samples
    /// with the weight EMA by default.
    /// </summary>
    /// <param name="checkpointFolder">A checkpoint folder (config.json, ema.safetensors, ...).</param>
    /// <param name="classNames">Names of the classes, in label order (optional; used for grid labels).</param>
    /// <param name="useEma">Sample with the weight EMA (true) or the trained weights.</param>
    /// <param name="device">cpu, cuda, cuda:N or auto.</param>
    public McDitModel LoadCheckpoint(string checkpointFolder, IReadOnlyList<string>? classNames = null, bool useEma = true, string device = "auto")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointFolder);
        var config = Checkpoint.ReadConfig(checkpointFolder);
        var state = Checkpoint.ReadState(checkpointFolder);
        var model = config.Model;
        if (classNames is not null && classNames.Count != model.NumClasses)
            throw new ArgumentException($"{classNames.Count} class names were given; the checkpoint's model has {model.NumClasses} classes.", nameof(classNames));
        var network = Checkpoint.LoadModel(checkpointFolder, ema: useEma, device: TorchBackend.ResolveDevice(device));
        var settings = new McDitModelSettings
        {
            Model = model,
            Method = config.Training.Method.Method,
            SigmaData = config.Training.Method.SigmaData,
            Channels = model.InChannels,
            Height = model.InputSize,
            Width = model.InputSize,
            NumberOfClasses = model.NumClasses,
            ClassNames = classNames?.ToArray(),
            LabelColumnName = model.NumClasses > 0 ? "Label" : null,
            Device = device,
            TrainedSteps = state.Step,
            FinalLoss = state.LastLoss,
        };
        return new McDitModel(Environment, settings, network);
    }
}
