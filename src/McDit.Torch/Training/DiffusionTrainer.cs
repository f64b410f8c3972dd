using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Modules;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// Trains a DiT, MaskDiT or MC-DiT model one batch at a time: the objective, AdamW, the weight EMA used for
/// sampling, MC-DiT's EMA branches, gradient clipping, the two stages and exact checkpoint/resume.
/// </summary>
/// <remarks>The caller feeds batches (images in [-1, 1] as float32 [N, C, H, W], labels int64 [N] or null).</remarks>
public sealed class DiffusionTrainer : IDisposable
{
    private readonly Dictionary<string, Tensor> _emaSource;
    private DiffusionObjective _objective;

    /// <summary>The model's shape, including what the method adds.</summary>
    public DiffusionTransformerConfig Config { get; }
    /// <summary>The optimisation settings.</summary>
    public TrainerOptions Options { get; private set; }
    /// <summary>The device the model lives on.</summary>
    public Device Device { get; }
    /// <summary>The trained network.</summary>
    public MaskedDiffusionTransformer Model { get; }
    /// <summary>The weight EMA (float32), used for sampling.</summary>
    public MaskedDiffusionTransformer EmaModel { get; }
    /// <summary>MC-DiT's noisy branch (null unless the method uses it).</summary>
    public ContextBranch? NoisyBranch { get; }
    /// <summary>MC-DiT's clean branch (null unless the method uses it).</summary>
    public ContextBranch? CleanBranch { get; }
    /// <summary>The optimizer.</summary>
    public AdamW Optimizer { get; }
    /// <summary>The generator behind every random draw of training (its state is checkpointed).</summary>
    public Generator Generator { get; }
    /// <summary>Where the run stands.</summary>
    public TrainingState State { get; }
    /// <summary>The objective in force (stage 2 switches it to unmasking tuning).</summary>
    public MethodOptions CurrentMethod => _objective.Options;

    /// <summary>Creates a trainer for a backbone configuration; the method adds its decoder and inputs.</summary>
    public DiffusionTrainer(DiffusionTransformerConfig backbone, TrainerOptions options) : this(backbone, options, new TrainingState()) { }

    internal DiffusionTrainer(DiffusionTransformerConfig backbone, TrainerOptions options, TrainingState state)
    {
        Options = options.Validated();
        Config = options.Method.ConfigureModel(backbone).Validated();
        Device = TorchBackend.ResolveDevice(options.Device);
        State = state;
        using (Init.Seeded(options.Seed)) Model = new MaskedDiffusionTransformer(Config);
        Model.to(Device);
        EmaModel = ExponentialMovingAverage.Frozen(new MaskedDiffusionTransformer(Config));
        EmaModel.to(Device);
        EmaModel.eval();
        ExponentialMovingAverage.CopyInto(EmaModel, ExponentialMovingAverage.NamedParameters(Model));
        if (options.Precision == TrainingPrecision.BFloat16) Model.to(ScalarType.BFloat16);
        Optimizer = new AdamW(Model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)),
            options.LearningRate, options.Beta1, options.Beta2, weightDecay: options.WeightDecay);
        // EMA sources: float32 masters for trained weights, the model's own tensors for the fixed tables.
        _emaSource = ExponentialMovingAverage.NamedParameters(Model);
        foreach (var (name, master) in Optimizer.MasterWeights) _emaSource[name] = master;
        var method = state.Stage == 2 ? options.Method.ForUnmaskTuning() : options.Method;
        if (state.Stage == 2) Optimizer.LearningRate = options.LearningRate / 2;
        _objective = new DiffusionObjective(method);
        if (options.Method.UsesBranches)
        {
            if (options.Method.NoisyBranch) NoisyBranch = new ContextBranch(Model, options.Method.BranchScope);
            if (options.Method.CleanBranch) CleanBranch = new ContextBranch(Model, options.Method.BranchScope);
        }
        // Draws happen on the CPU and move to the device, so a seed means the same run on any device.
        Generator = new Generator((ulong)options.Seed + 1, torch.CPU);
        Model.train();
    }

    /// <summary>
    /// One optimisation step on a batch: loss, backward, optional clipping, AdamW, weight EMA and branch EMAs.
    /// Allocates no tensors that outlive the call.
    /// </summary>
    public LossBreakdown Step(Tensor images, Tensor? labels)
    {
        using var scope = NewDisposeScope();
        ValidateBatch(images, labels);
        Model.train();
        var x0 = images.to(ScalarType.Float32).to(Device);
        var y = Config.NumClasses > 0 && labels is not null ? labels.to(ScalarType.Int64).to(Device) : null;
        var draws = _objective.Draw(Model, x0, y, Generator);
        try
        {
            var (perSample, breakdown) = _objective.Loss(Model, x0, draws, NoisyBranch, CleanBranch);
            var loss = perSample.mean();
            Optimizer.ZeroGrad();
            loss.backward();
            if (Options.GradClipNorm > 0) Optimizer.ClipGradNorm(Options.GradClipNorm);
            Optimizer.Step();
            ExponentialMovingAverage.Update(EmaModel, _emaSource, Options.EmaDecay);
            if (NoisyBranch is not null && _objective.Options.NoisyBranch)
                ExponentialMovingAverage.Update(NoisyBranch, _emaSource, Options.Method.BranchEmaDecay);
            if (CleanBranch is not null && _objective.Options.CleanBranch)
                ExponentialMovingAverage.Update(CleanBranch, _emaSource, Options.Method.BranchEmaDecay);
            State.Step++;
            State.LastLoss = breakdown.Total;
            if (!double.IsFinite(breakdown.Total))
                throw new InvalidOperationException(
                    $"The training loss became {breakdown.Total} at step {State.Step}. Lower the learning rate ({Options.LearningRate}), enable gradient clipping, or check the data for NaN/Inf.");
            return breakdown;
        }
        finally
        {
            draws.Mask?.Dispose();
        }
    }

    /// <summary>Stage 2, unmasking tuning: mask ratio 0, no masked-token term, no clean inputs or branches, learning rate halved.</summary>
    public void StartUnmaskTuning()
    {
        if (State.Stage == 2) return;
        State.Stage = 2;
        Optimizer.LearningRate = Options.LearningRate / 2;
        _objective = new DiffusionObjective(Options.Method.ForUnmaskTuning());
    }

    /// <summary>Generates samples with the weight EMA (or the trained model) on this trainer's device.</summary>
    public Tensor Generate(IReadOnlyList<int>? labels, int count, long seed, SamplerOptions sampler, bool useEma = true) =>
        ModelSampler.Generate(useEma ? EmaModel : Model, labels, count, seed, sampler, Options.Method.SigmaData);

    private void ValidateBatch(Tensor images, Tensor? labels)
    {
        var c = Config;
        if (images.dim() != 4 || images.shape[1] != c.InChannels || images.shape[2] != c.InputSize || images.shape[3] != c.InputSize)
            throw new ArgumentException(
                $"Images have shape [{string.Join(", ", images.shape)}]; this model expects [N, {c.InChannels}, {c.InputSize}, {c.InputSize}].", nameof(images));
        if (labels is null) return;
        if (labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException($"Labels have shape [{string.Join(", ", labels.shape)}]; expected [{images.shape[0]}], one per image.", nameof(labels));
        if (c.NumClasses > 0 && labels.numel() > 0)
        {
            long min = labels.min().to_type(ScalarType.Int64).item<long>(), max = labels.max().to_type(ScalarType.Int64).item<long>();
            if (min < 0 || max >= c.NumClasses)
                throw new ArgumentOutOfRangeException(nameof(labels), $"Labels range over [{min}, {max}]; this model has classes 0..{c.NumClasses - 1}.");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Optimizer.Dispose();
        Model.Dispose();
        EmaModel.Dispose();
        NoisyBranch?.Dispose();
        CleanBranch?.Dispose();
        Generator.Dispose();
    }
}
