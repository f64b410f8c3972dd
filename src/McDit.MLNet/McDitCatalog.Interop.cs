using McDit.MLNet.Generation;
using McDit.Torch.Data;
using McDit.Torch.Diffusion;
using McDit.Torch.Interop;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using TorchSharp;

namespace Microsoft.ML;

public sealed partial class McDitCatalog
{
    /// <summary>
    /// A generator from the weights the reference implementations release: a facebookresearch/DiT or Anima-Lab/MaskDiT
    /// <c>.pt</c> file (a bare state dict such as <c>DiT-XL-2-256x256.pt</c>, or a training checkpoint with <c>model</c>,
    /// <c>ema</c>, <c>opt</c> and <c>args</c>) or <c>.safetensors</c> file, read without running any code from it
    /// (see <see cref="ReferenceCheckpoint"/>). The shape is inferred from the tensors. DiT's weights sample with DiT's
    /// sampler by default (DDPM, 250 respaced steps, learned sigma), MaskDiT's with EDM Heun (40 steps); both work with
    /// either EDM solver. A 1000-class model gets the ImageNet class names. Add the VAE with <see cref="McDitModel.WithDecoder"/>.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="format">Which reference wrote it; null guesses from the names (a decoder means MaskDiT).</param>
    /// <param name="options">What to take (<c>ema</c> or <c>model</c>) and shape settings the tensors do not show.</param>
    /// <param name="classNames">Names of the classes (default: ImageNet's for 1000 classes).</param>
    /// <param name="device">cpu, cuda, cuda:N or auto.</param>
    /// <exception cref="TorchFormatException">The file is damaged, unsafe or not a checkpoint of that reference.</exception>
    public McDitModel LoadReference(string path, ReferenceFormat? format = null, ReferenceImportOptions? options = null,
        IReadOnlyList<string>? classNames = null, string device = "auto")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var target = TorchBackend.ResolveDevice(device);
        using var imported = ReferenceCheckpoint.Read(path, format, options);
        var chosen = imported.Format;
        var config = imported.Config;
        if (classNames is not null && classNames.Count != config.NumClasses)
            throw new ArgumentException($"{classNames.Count} class names were given; the model has {config.NumClasses} classes.", nameof(classNames));
        classNames ??= config.NumClasses == ImageNetClasses.Count ? ImageNetClasses.Names : null;
        var network = imported.CreateNetwork();
        try
        {
            network.to(target);
            bool ddpm = config.Formulation == DiffusionFormulation.VpEpsilon;
            var settings = new McDitModelSettings
            {
                Model = config,
                Method = chosen == ReferenceFormat.DiT ? TrainingMethod.DiT : TrainingMethod.MaskDiT,
                Channels = config.InChannels, Height = config.InputSize, Width = config.InputSize,
                // Latents are the model's own scale: [−1, 1] maps to itself, so a VAE decodes the samples as they are.
                InputMinimum = -1f, InputMaximum = 1f,
                NumberOfClasses = config.NumClasses,
                ClassNames = classNames?.ToArray(),
                LabelColumnName = config.NumClasses > 0 ? "Label" : null,
                SamplingSteps = ddpm ? 250 : 40,
                Solver = ddpm ? SamplerSolver.Ddpm : SamplerSolver.Heun,
                // A DDPM network knows σ from t = 0 (σ ≈ 0.01) upwards; EDM solvers start and stop inside that range.
                SigmaMin = ddpm ? Math.Max(0.002, new DdpmSchedule(1).Sigma(0)) : 0.002,
                Device = device,
            };
            return new McDitModel(Environment, settings, network);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a generator's network for a reference implementation (see <see cref="ReferenceCheckpoint.Export"/>): a
    /// <c>.pt</c> file that <c>torch.load(path, weights_only=True)</c> reads, or <c>.safetensors</c>, under the reference's
    /// parameter names.
    /// </summary>
    /// <param name="model">The generator (its weights are the EMA of a McDit run).</param>
    /// <param name="format">DiT or MaskDiT.</param>
    /// <param name="path">The file to write.</param>
    /// <param name="layout">A bare state dict or a training checkpoint dict; the default is the reference's own.</param>
    /// <param name="trainedCheckpoint">A checkpoint folder whose trained (non-EMA) weights go under <c>model</c> in the checkpoint layout; null stores the generator's weights as both.</param>
    /// <returns>Notes on what the conversion did.</returns>
    public IReadOnlyList<string> ExportReference(McDitModel model, ReferenceFormat format, string path,
        ReferenceLayout layout = ReferenceLayout.Default, string? trainedCheckpoint = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var trained = trainedCheckpoint is null ? null : Checkpoint.LoadModel(trainedCheckpoint, ema: false, device: torch.CPU);
        lock (model.Gate)
        {
            var device = model.Network.parameters().First().device;
            model.Network.to(torch.CPU);
            try { return ReferenceCheckpoint.Export(model.Network, format, path, layout, trained); }
            finally { model.Network.to(device); }
        }
    }
}
