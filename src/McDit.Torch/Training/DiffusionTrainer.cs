using McDit.Torch.Diffusion;
using McDit.Torch.Distributed;
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
    /// <summary>MC-DiT's noisy branch (null unless the method uses it); the same module as <see cref="CleanBranch"/> when both are used (equal EMAs).</summary>
    public ContextBranch? NoisyBranch { get; }
    /// <summary>MC-DiT's clean branch (null unless the method uses it); the same module as <see cref="NoisyBranch"/> when both are used.</summary>
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
            options.LearningRate, options.Beta1, options.Beta2, AdamW.DefaultEpsilon, options.WeightDecay, options.OptimizerLayout);
        // EMA sources: float32 masters for trained weights, the model's own tensors for the fixed tables.
        _emaSource = ExponentialMovingAverage.NamedParameters(Model);
        foreach (var (name, master) in Optimizer.MasterWeights) _emaSource[name] = master;
        var method = state.Stage == 2 ? options.Method.ForUnmaskTuning() : options.Method;
        Optimizer.LearningRate = options.LearningRateAt(state.Step, state.Stage); // one rule for the stage-2 halving and the schedule
        _objective = new DiffusionObjective(method);
        if (options.Method.UsesBranches)
        {
            // Both branches are EMAs of the same weights with one decay from the same start, so they are equal at every
            // step: one module serves as both (one EMA update, one decoder call for both branch losses).
            var branch = new ContextBranch(Model, options.Method.BranchScope);
            if (options.Method.NoisyBranch) NoisyBranch = branch;
            if (options.Method.CleanBranch) CleanBranch = branch;
        }
        // Draws happen on the CPU and move to the device, so a seed means the same run on any device.
        Generator = new Generator((ulong)options.Seed + 1, torch.CPU);
        Model.train();
    }

    /// <summary>
    /// One optimisation step on a batch: loss, backward, optional clipping, AdamW, weight EMA and branch EMAs.
    /// Allocates no tensors that outlive the call.
    /// </summary>
    public LossBreakdown Step(Tensor images, Tensor? labels) => Step(images, labels, null);

    /// <summary>
    /// One optimisation step; in a data-parallel job (<see cref="JoinDataParallel"/>) <paramref name="images"/> and
    /// <paramref name="labels"/> are this rank's <paramref name="shard"/> of a global batch, the random draws are those
    /// of the global batch, the gradients are summed over the ranks (each rank's loss divided by the global batch size)
    /// before clipping and AdamW, and the returned losses are the global batch's. Every rank calls it for every global
    /// batch, also with an empty shard.
    /// </summary>
    /// <param name="images">Float32 [n, C, H, W] in [-1, 1]: the whole batch, or this rank's rows of it.</param>
    /// <param name="labels">Int64 [n], or null.</param>
    /// <param name="shard">Which rows of the global batch these are; null means the whole batch.</param>
    public LossBreakdown Step(Tensor images, Tensor? labels, BatchShard? shard)
    {
        using var scope = NewDisposeScope();
        ValidateBatch(images, labels, shard);
        Model.train();
        var x0 = images.to(ScalarType.Float32).to(Device);
        var y = Config.NumClasses > 0 && labels is not null ? labels.to(ScalarType.Int64).to(Device) : null;
        if (Options.HasSchedule) Optimizer.LearningRate = Options.LearningRateAt(State.Step, State.Stage);
        var draws = _objective.Draw(Model, x0, y, Generator, shard);
        try
        {
            var breakdown = DataParallel is null
                ? ForwardBackward(x0, draws)
                : ForwardBackwardDataParallel(x0, y, draws, shard ?? DataParallel.Shard((int)x0.shape[0]));
            if (Options.GradClipNorm > 0) Optimizer.ClipGradNorm(Options.GradClipNorm); // all-reduced gradients: the global norm
            Optimizer.Step();
            ExponentialMovingAverage.Update(EmaModel, _emaSource, Options.EmaDecay);
            if (NoisyBranch is not null && _objective.Options.NoisyBranch)
                ExponentialMovingAverage.Update(NoisyBranch, _emaSource, Options.Method.BranchEmaDecay);
            if (CleanBranch is not null && _objective.Options.CleanBranch
                && !(ReferenceEquals(CleanBranch, NoisyBranch) && _objective.Options.NoisyBranch))
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

    private LossBreakdown ForwardBackward(Tensor x0, DiffusionObjective.Draws draws)
    {
        int n = (int)x0.shape[0];
        if (BatchHalves.For(x0.device, n) is { } halves) return ForwardBackwardInHalves(halves, x0, draws);
        var (perSample, breakdown) = _objective.Loss(Model, x0, draws, NoisyBranch, CleanBranch);
        var loss = perSample.mean();
        Optimizer.ZeroGrad();
        loss.backward();
        return breakdown;
    }

    // The batch's two halves at once on two threads (see BatchHalves): each backpropagates Σ_rows loss / N, so the two
    // contributions that meet in every .grad add up to the gradient of the batch mean, in either order the same sum.
    private LossBreakdown ForwardBackwardInHalves(BatchHalves halves, Tensor x0, DiffusionObjective.Draws draws)
    {
        int n = (int)x0.shape[0];
        var parts = new LossBreakdown[2];
        Optimizer.ZeroGrad();
        halves.Run(which =>
        {
            using var scope = NewDisposeScope();
            var (start, count) = BatchHalves.Half(n, which);
            using var mine = draws.Rows(start, count);
            var (perSample, breakdown) = _objective.Loss(Model, x0.narrow(0, start, count), mine, NoisyBranch, CleanBranch);
            (perSample.sum() / n).backward();
            parts[which] = breakdown;
        });
        var (n0, n1) = (BatchHalves.Half(n, 0).Count, BatchHalves.Half(n, 1).Count);
        double Mean(Func<LossBreakdown, double> of) => (of(parts[0]) * n0 + of(parts[1]) * n1) / n;
        return new LossBreakdown
        {
            Total = Mean(b => b.Total), Denoising = Mean(b => b.Denoising), Masked = Mean(b => b.Masked),
            NoisyBranch = Mean(b => b.NoisyBranch), CleanBranch = Mean(b => b.CleanBranch),
        };
    }

    // This rank's part of the global batch's loss, Σ_rows loss / N_global, so the ranks' gradients add up to the gradient
    // of the global mean (uneven shards included); then the gradients and loss sums are summed over the ranks.
    private LossBreakdown ForwardBackwardDataParallel(Tensor x0, Tensor? y, DiffusionObjective.Draws draws, BatchShard shard)
    {
        int n = (int)x0.shape[0];
        var sums = new double[6];
        Optimizer.ZeroGrad();
        if (n > 0)
        {
            var (perSample, b) = _objective.Loss(Model, x0, draws, NoisyBranch, CleanBranch);
            (perSample.sum() / shard.GlobalSize).backward();
            sums = new[] { b.Total * n, b.Denoising * n, b.Masked * n, b.NoisyBranch * n, b.CleanBranch * n, n };
        }
        else
        {
            // An empty shard (a last batch with fewer rows than ranks): a zero-weighted pass over one placeholder row gives
            // this rank gradients (zeros) for exactly the parameters the other ranks have gradients for.
            using var placeholderGenerator = new Generator(0, torch.CPU);
            var x = zeros(new[] { 1L, x0.shape[1], x0.shape[2], x0.shape[3] }, device: x0.device);
            var labels = y is null ? null : zeros(1, dtype: ScalarType.Int64, device: x0.device);
            var placeholder = _objective.Draw(Model, x, labels, placeholderGenerator);
            try { (_objective.Loss(Model, x, placeholder, NoisyBranch, CleanBranch).PerSample.sum() * 0).backward(); }
            finally { placeholder.Mask?.Dispose(); }
        }
        var total = DataParallel!.AllReduceGradients(_trainable!, sums);
        if (total[5] != shard.GlobalSize)
            throw new Distributed.DistributedException(
                $"Rank {DataParallel.Group.Rank}: the ranks' shards hold {total[5]} rows, but the global batch has {shard.GlobalSize}. Every rank must read the same global batches.");
        return new LossBreakdown
        {
            Total = total[0] / total[5], Denoising = total[1] / total[5], Masked = total[2] / total[5],
            NoisyBranch = total[3] / total[5], CleanBranch = total[4] / total[5],
        };
    }

    /// <summary>The data-parallel job this trainer is a rank of (null: it trains alone).</summary>
    public DataParallel? DataParallel { get; private set; }

    /// <summary>
    /// Makes this trainer one rank of a data-parallel job. Call it on every rank, after creating the trainer or loading
    /// it from a checkpoint and before the first step: rank 0's weights, weight EMA, branches, optimizer state and random
    /// state are copied to every rank (so all ranks hold identical state), after checking that every rank stands at the
    /// same step, stage and data position.
    /// </summary>
    /// <exception cref="Distributed.DistributedException">The ranks do not stand at the same point, or a collective failed.</exception>
    public void JoinDataParallel(IProcessGroup group, long bucketBytes = DataParallel.DefaultBucketBytes)
    {
        if (DataParallel is not null) throw new InvalidOperationException("This trainer already belongs to a data-parallel job.");
        var parallel = new DataParallel(group, bucketBytes);
        parallel.RequireSameAsRoot(new (string, long)[]
        {
            ("step", State.Step), ("stage", State.Stage), ("epoch", State.Epoch), ("batch in epoch", State.BatchInEpoch),
            ("optimizer steps", Optimizer.StepCount), ("learning rate bits", BitConverter.DoubleToInt64Bits(Optimizer.LearningRate)),
            ("trainable parameters", Model.ParameterCount(trainableOnly: true)),
        }, "Every rank must start fresh with the same settings, or resume from the same checkpoint (a folder every rank can read).");
        using (var rng = Generator.get_state())
        {
            var state = new List<Tensor>(Model.state_dict().Values);
            state.AddRange(Optimizer.StateTensors().Values);
            state.AddRange(EmaModel.state_dict().Values);
            if (NoisyBranch is not null) state.AddRange(NoisyBranch.state_dict().Values);
            if (CleanBranch is not null && !ReferenceEquals(CleanBranch, NoisyBranch)) state.AddRange(CleanBranch.state_dict().Values);
            state.Add(rng);
            parallel.BroadcastFromRoot(state);
            Generator.set_state(rng);
        }
        _trainable = Model.parameters().Where(p => p.requires_grad).Select(p => (Tensor)p).ToList();
        DataParallel = parallel;
    }

    private List<Tensor>? _trainable;

    /// <summary>Stage 2, unmasking tuning: mask ratio 0, no masked-token term, no clean inputs or branches, learning rate halved.</summary>
    public void StartUnmaskTuning()
    {
        if (State.Stage == 2) return;
        State.Stage = 2;
        Optimizer.LearningRate = Options.LearningRateAt(State.Step, State.Stage);
        _objective = new DiffusionObjective(Options.Method.ForUnmaskTuning());
    }

    /// <summary>Generates samples with the weight EMA (or the trained model) on this trainer's device.</summary>
    public Tensor Generate(IReadOnlyList<int>? labels, int count, long seed, SamplerOptions sampler, bool useEma = true) =>
        ModelSampler.Generate(useEma ? EmaModel : Model, labels, count, seed, sampler, Options.Method.SigmaData);

    private void ValidateBatch(Tensor images, Tensor? labels, BatchShard? shard)
    {
        var c = Config;
        if (shard is not null)
        {
            shard.Validated();
            if (!shard.IsWhole && DataParallel is null)
                throw new ArgumentException($"A shard of rank {shard.Rank} of {shard.WorldSize} needs a data-parallel job: call JoinDataParallel first.", nameof(shard));
            if (DataParallel is not null && (shard.Rank != DataParallel.Group.Rank || shard.WorldSize != DataParallel.Group.WorldSize))
                throw new ArgumentException($"The shard is for rank {shard.Rank} of {shard.WorldSize}; this trainer is rank {DataParallel.Group.Rank} of {DataParallel.Group.WorldSize}.", nameof(shard));
            if (images.shape[0] != shard.Count)
                throw new ArgumentException($"Images have {images.shape[0]} rows; the shard of rank {shard.Rank} holds {shard.Count} rows of the global batch of {shard.GlobalSize}.", nameof(images));
        }
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
        if (!ReferenceEquals(CleanBranch, NoisyBranch)) CleanBranch?.Dispose();
        Generator.Dispose();
    }
}
