using System.Diagnostics;
using McDit.MLNet.Generation;
using McDit.MLNet.Internal;
using McDit.Torch.Distributed;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Trainers;

/// <summary>
/// Trains a masked diffusion transformer (DiT, MaskDiT or MC-DiT) on an image column and returns the generator,
/// a <see cref="McDitModel"/>.
/// </summary>
/// <remarks>
/// <para>Create it with <c>mlContext.McDit().Trainers.DiffusionTransformer(...)</c>. The image column is an MLImage
/// column or a CHW float vector (see <see cref="Options"/> for scaling); the optional label column is a key or a
/// class index. Without a label column the model is unconditional.</para>
/// <para>Data is streamed: each epoch opens a cursor shuffled by a seed derived from <see cref="Options.Seed"/> and the
/// epoch (through ML.NET's pool-based row shuffling when the data view cannot shuffle itself; MLImage columns of such
/// views are read in order) and converts
/// <see cref="Options.BatchSize"/> rows at a time to a tensor; the data set is never held in memory. Training logs
/// the loss through the MLContext's log, reports progress on ML.NET's progress channel and stops with an
/// <see cref="OperationCanceledException"/> when the MLContext's execution is cancelled (ML.NET's internal
/// <c>CancelExecution</c>) or <see cref="Options.CancellationToken"/> is.</para>
/// <para>Bad input (a missing column, a wrong vector size, a label out of range, an empty data view, non-finite
/// pixels) fails before the first training step with an exception that names the column and what was expected.</para>
/// </remarks>
public sealed partial class McDitTrainer : IEstimator<McDitModel>
{
    readonly IHost _host;
    readonly Options _options;

    internal McDitTrainer(IHostEnvironment env, Options options)
    {
        Contracts.CheckValue(env, nameof(env));
        _host = env.Register(nameof(McDitTrainer));
        _host.CheckValue(options, nameof(options));
        CheckOptions(options);
        _options = options;
    }

    /// <summary>The options this trainer was created with.</summary>
    public Options TrainerOptions => _options;

    static void CheckOptions(Options o)
    {
        static void Require(bool ok, string name, object? value, string expected)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"McDitTrainer option {name} = {value ?? "null"} is invalid: expected {expected}.");
        }
        Require(!string.IsNullOrWhiteSpace(o.ImageColumnName), nameof(o.ImageColumnName), o.ImageColumnName, "a column name");
        Require(o.LabelColumnName is null || o.LabelColumnName.Trim().Length > 0, nameof(o.LabelColumnName), o.LabelColumnName, "a column name, or null for an unconditional model");
        Require(o.NumberOfClasses >= 0, nameof(o.NumberOfClasses), o.NumberOfClasses, "≥ 0 (0 = from the key type)");
        Require(o.Channels >= 0 && o.Height >= 0 && o.Width >= 0, nameof(o.Channels), $"{o.Channels}×{o.Height}×{o.Width}", "values ≥ 0");
        Require(float.IsFinite(o.InputMinimum) && float.IsFinite(o.InputMaximum) && o.InputMaximum > o.InputMinimum,
            nameof(o.InputMaximum), $"[{o.InputMinimum}, {o.InputMaximum}]", "finite InputMinimum < InputMaximum");
        Require(o.ShufflePoolSize >= 1, nameof(o.ShufflePoolSize), o.ShufflePoolSize, "≥ 1");
        Require(o.NumberOfSteps >= 1, nameof(o.NumberOfSteps), o.NumberOfSteps, "≥ 1");
        Require(o.UnmaskTuningSteps >= 0, nameof(o.UnmaskTuningSteps), o.UnmaskTuningSteps, "≥ 0");
        Require(o.LearningRateWarmupSteps >= 0, nameof(o.LearningRateWarmupSteps), o.LearningRateWarmupSteps, "≥ 0 (0: no warm-up)");
        Require(Enum.IsDefined(o.LearningRateDecay), nameof(o.LearningRateDecay), o.LearningRateDecay, "Constant or Cosine");
        Require(o.MaximumNumberOfEpochs is null or >= 1, nameof(o.MaximumNumberOfEpochs), o.MaximumNumberOfEpochs, "≥ 1 or null");
        Require(o.BatchSize >= 1, nameof(o.BatchSize), o.BatchSize, "≥ 1");
        Require(o.LoggingInterval >= 1, nameof(o.LoggingInterval), o.LoggingInterval, "≥ 1");
        Require(o.CheckpointInterval >= 0, nameof(o.CheckpointInterval), o.CheckpointInterval, "≥ 0 (0: only at the end)");
        Require(!o.ResumeFromCheckpoint || o.CheckpointFolder is not null, nameof(o.ResumeFromCheckpoint), o.ResumeFromCheckpoint, "a CheckpointFolder to resume from");
        Require(o.SamplingSteps >= 1, nameof(o.SamplingSteps), o.SamplingSteps, "≥ 1");
        Require(o.GenerationBatchSize >= 1, nameof(o.GenerationBatchSize), o.GenerationBatchSize, "≥ 1");
        Require(double.IsFinite(o.GuidanceScale), nameof(o.GuidanceScale), o.GuidanceScale, "a finite number (1 = no guidance)");
        Require(o.GuidanceSigmaMin >= 0 && double.IsFinite(o.GuidanceSigmaMin), nameof(o.GuidanceSigmaMin), o.GuidanceSigmaMin, "a finite σ ≥ 0 (0: guide every step)");
        Require(o.GuidanceSigmaMax > o.GuidanceSigmaMin, nameof(o.GuidanceSigmaMax), o.GuidanceSigmaMax, $"a σ above GuidanceSigmaMin = {o.GuidanceSigmaMin} (+∞: no upper end)");
        Require(o.AlternatingShift >= 0, nameof(o.AlternatingShift), o.AlternatingShift, "≥ 0 pixels (0: no shift)");
        Require(o.AlternatingShiftSigmaMax > 0, nameof(o.AlternatingShiftSigmaMax), o.AlternatingShiftSigmaMax, "a σ > 0 (+∞: every other evaluation)");
        Require(!string.IsNullOrWhiteSpace(o.GeneratedImageColumnName) && !string.IsNullOrWhiteSpace(o.GeneratedPixelsColumnName)
            && o.GeneratedImageColumnName != o.GeneratedPixelsColumnName, nameof(o.GeneratedPixelsColumnName), o.GeneratedPixelsColumnName,
            "two different, non-empty output column names");
        Require(o.SeedColumnName is null || o.SeedColumnName.Trim().Length > 0, nameof(o.SeedColumnName), o.SeedColumnName, "a column name, or null for seeds by row position");
        // A generated column named like an input the model reads would hide the class or seed the image was made from.
        foreach (var (option, name) in new[] { (nameof(o.GeneratedImageColumnName), o.GeneratedImageColumnName), (nameof(o.GeneratedPixelsColumnName), o.GeneratedPixelsColumnName) })
            Require(name != o.LabelColumnName && name != o.SeedColumnName, option, name,
                $"a name other than the {(name == o.LabelColumnName ? $"label column ('{o.LabelColumnName}')" : $"seed column ('{o.SeedColumnName}')")}, " +
                "which the generated column would hide");
        if (o.ModelConfig is null) DiffusionTransformerConfig.ParseName(o.Model);
        o.MethodOptions?.Validated();
        BuildTrainerOptions(o, 0).Validated();
    }

    static TrainerOptions BuildTrainerOptions(Options o, long seed) => new()
    {
        Method = o.MethodOptions ?? MethodOptions.For(o.Method),
        LearningRate = o.LearningRate,
        WarmupSteps = o.LearningRateWarmupSteps,
        Decay = o.LearningRateDecay,
        DecaySteps = (long)o.NumberOfSteps + o.UnmaskTuningSteps,
        WeightDecay = o.WeightDecay,
        EmaDecay = o.EmaDecay,
        GradClipNorm = o.GradientClipNorm,
        Seed = seed,
        Device = o.Device,
        Precision = o.Precision,
    };

    /// <summary>
    /// The input schema plus the generated image (MLImage) and pixel (float vector) columns. Checks every column the
    /// trainer and its model read (image, label, seed), so a pipeline fails here, before training, not after it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The image, label or seed column is missing or of the wrong type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        if (!inputSchema.TryFindColumn(_options.ImageColumnName, out var image))
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Image column '{_options.ImageColumnName}' was not found; expected an MLImage column or a known-size float vector in CHW order.");
        bool isImage = image.Kind == SchemaShape.Column.VectorKind.Scalar && image.ItemType is ImageDataViewType;
        bool isVector = image.Kind == SchemaShape.Column.VectorKind.Vector && image.ItemType == NumberDataViewType.Single;
        if (!isImage && !isVector)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Image column '{_options.ImageColumnName}' is {image.Kind} of {image.ItemType}; expected an MLImage column or a known-size float vector in CHW order.");
        if (_options.LabelColumnName is { } label)
        {
            if (!inputSchema.TryFindColumn(label, out var l))
                throw new ArgumentOutOfRangeException(nameof(inputSchema),
                    $"Label column '{label}' was not found; expected {IndexColumn.Expected}, or set the label column name to null for an unconditional model.");
            if (l.Kind != SchemaShape.Column.VectorKind.Scalar || !IndexColumn.IsSupported(l.ItemType))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{label}' is {l.Kind} of {l.ItemType}; expected {IndexColumn.Expected}.");
        }
        CheckSeedColumn(inputSchema, _options);
        var columns = inputSchema.ToDictionary(c => c.Name);
        columns[_options.GeneratedImageColumnName] = new SchemaShape.Column(_options.GeneratedImageColumnName,
            SchemaShape.Column.VectorKind.Scalar, new ImageDataViewType(), false);
        columns[_options.GeneratedPixelsColumnName] = new SchemaShape.Column(_options.GeneratedPixelsColumnName,
            SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        return new SchemaShape(columns.Values);
    }

    /// <summary>
    /// Checks <see cref="Options.SeedColumnName"/> against the training data: the trained model reads it, and a pipeline
    /// that ends in this trainer passes its training data through the model as soon as training ends.
    /// </summary>
    internal static void CheckSeedColumn(SchemaShape schema, Options o)
    {
        if (o.SeedColumnName is not { } seed) return;
        if (!schema.TryFindColumn(seed, out var column))
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Seed column '{seed}' (McDitTrainer.Options.SeedColumnName) was not found in the training data, which has " +
                $"{string.Join(", ", schema.Select(c => $"'{c.Name}'").Distinct())}. The trained model reads per-row seeds from it, and a pipeline " +
                "that ends in this trainer passes the training data through that model, so it must be there (a whole-number column). " +
                "To read seeds only when generating, leave SeedColumnName null and use model.WithSampling(seedColumnName: ...).");
        if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.IsKey || column.ItemType is KeyDataViewType || !IndexColumn.IsSupported(column.ItemType))
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Seed column '{seed}' (McDitTrainer.Options.SeedColumnName) is {column.Kind} of {column.ItemType}{(column.IsKey ? " (a key)" : "")}; " +
                "expected a whole number (Int32, Int64, …), not a key.");
    }

    /// <summary>Trains on <paramref name="input"/> and returns the generator.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type or size.</exception>
    /// <exception cref="InvalidOperationException">The data is empty, or a row holds a bad value (non-finite pixel, label out of range).</exception>
    /// <exception cref="OperationCanceledException">The MLContext's execution was cancelled.</exception>
    public McDitModel Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        var o = _options;
        McDit.Torch.Runtime.TorchThreadPolicy.ApplyOnce(o.Threads);
        // Latent-space data: the column holds the VAE's scaled latents, taken as they are (−1 and +1 map to themselves).
        var decoder = o.LatentDecoder ?? (o.LatentDecoderPath is { } vaePath ? Latents.VaeRuntime.Load(vaePath) : null);
        if (decoder is not null)
        {
            o = o.Clone();
            o.InputMinimum = -1f;
            o.InputMaximum = 1f;
            o.ValidateInputRange = false;
        }
        var plan = TrainingPlan.Create(input.Schema, o);
        if (decoder is not null && (plan.Shape.IsImage || plan.Shape.Channels != decoder.Config.LatentChannels))
            throw new ArgumentOutOfRangeException(nameof(input),
                $"Image column '{o.ImageColumnName}' holds {(plan.Shape.IsImage ? "MLImages" : $"{plan.Shape.Channels}-channel vectors")}, but with a latent " +
                $"decoder it must hold the VAE's latents, float vectors [{decoder.Config.LatentChannels}, h, w] (EncodeLatents with the VAE, or a latent cache).");
        long seed = o.Seed ?? ((IHostEnvironmentInternal)_host).Seed ?? 0;
        if ((long)o.BatchSize * plan.Shape.Size > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(o.BatchSize), o.BatchSize,
                $"McDitTrainer option BatchSize = {o.BatchSize} is too large for {plan.Shape.Channels}×{plan.Shape.Height}×{plan.Shape.Width} images: " +
                $"a batch must hold at most {Array.MaxLength:N0} values ({Array.MaxLength / plan.Shape.Size:N0} images).");

        using var ch = _host.Start("Training");
        using var pch = _host.StartProgressChannel("McDit diffusion transformer training");
        TorchBackend.EnsureInitialized();
        var world = o.Distributed.ResolveWorld();
        if (world.DeviceFor(o.Device) != o.Device)
        {
            o = o.Clone();
            o.Device = world.DeviceFor(o.Device); // one GPU per process of a machine
        }

        // Every row is checked before the first step (one streaming pass), unless the options say otherwise.
        long? rows = null;
        if (o.ValidateDataBeforeTraining)
        {
            rows = plan.CountAndValidate(input, _host, o);
            ch.Info($"McDit: {rows} training rows, images {plan.Shape.Channels}×{plan.Shape.Height}×{plan.Shape.Width}, " +
                $"{(plan.NumberOfClasses > 0 ? $"{plan.NumberOfClasses} classes" : "unconditional")}.");
        }

        var backbone = plan.Backbone(o);
        long totalSteps = o.NumberOfSteps + o.UnmaskTuningSteps;
        long step = 0;
        double loss = double.NaN;
        pch.SetHeader(new ProgressHeader(new[] { "Loss" }, new[] { "Steps" }), e =>
        {
            e.SetProgress(0, Interlocked.Read(ref step), totalSteps);
            e.SetMetric(0, Volatile.Read(ref loss));
        });

        var checkpoints = o.CheckpointFolder is null ? null : new CheckpointSeries(o.CheckpointFolder);
        // Steps that get a checkpoint in an uninterrupted run; those written on cancellation are pruned once superseded.
        Func<long, bool> regular = s => o.CheckpointInterval > 0 && s % o.CheckpointInterval == 0;
        DiffusionTrainer? resumed = null;
        string? resumeFrom = null;
        if (o.ResumeFromCheckpoint)
        {
            var damaged = new List<CheckpointSeries.Damaged>();
            // Only the writer of the series (rank 0 of a data-parallel job) repairs it; every rank resumes from what it finds.
            bool writer = o.Distributed.ResolveWorld().Rank == 0;
            (resumed, resumeFrom) = checkpoints!.ResumeLatest(folder => ResumeTrainer(folder, backbone, o, ch), d =>
            {
                damaged.Add(d);
                ch.Warning($"McDit: skipping damaged checkpoint {d.Folder}: {d.Problem}");
                o.DamagedCheckpointCallback?.Invoke(d);
            }, recover: writer);
            if (resumed is null && damaged.Count > 0)
                throw new InvalidDataException(
                    $"Every checkpoint in '{checkpoints.Folder}' is damaged ({damaged.Count}; the newest: {damaged[0].Problem}); nothing to resume from. " +
                    "Restore a checkpoint from a backup, or train into a new CheckpointFolder.");
        }
        using var trainer = resumed ?? new DiffusionTrainer(backbone, BuildTrainerOptions(o, seed));
        var state = trainer.State;
        step = state.Step;
        using var group = ProcessGroups.Create(o.Distributed, trainer.Device);
        int rank = group?.Rank ?? 0, worldSize = group?.WorldSize ?? 1;
        bool isMain = rank == 0; // writes checkpoints and runs the step callback
        if (step > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(o.NumberOfSteps), o.NumberOfSteps,
                $"The checkpoint {resumeFrom} is at step {step}, past the {totalSteps} steps asked for (NumberOfSteps + UnmaskTuningSteps); ask for at least {step}.");
        long firstStep = step;
        if (resumeFrom is not null && isMain) o.ResumeCallback?.Invoke(resumeFrom, step);
        ch.Info($"McDit: training {trainer.Config.Depth}×{trainer.Config.HiddenSize} {trainer.CurrentMethod.Method} " +
            $"({trainer.Model.ParameterCount(trainableOnly: true):N0} trainable parameters) on {trainer.Device} for {totalSteps} steps, batch {o.BatchSize}" +
            (group is null ? "" : $" over {worldSize} ranks ({group.Backend}; this is rank {rank})") +
            (resumeFrom is null ? "." : $", resuming at step {step} from {resumeFrom}."));

        // Rows not shuffleable by the view itself are shuffled by ML.NET's pool shuffler (streaming, ShufflePoolSize
        // rows), which can carry vector columns but not MLImages: those are read in order, with a warning.
        IDataView source = input;
        if (!input.CanShuffle)
        {
            if (plan.Shape.IsImage)
                ch.Warning($"McDit: the data view cannot shuffle its rows and its image column '{o.ImageColumnName}' holds MLImages, " +
                    "which ML.NET's row shuffler cannot pool; rows are read in order every epoch. Load the images from a shuffleable " +
                    "source (for example TextLoader + LoadImages), or extract the pixels (ExtractPixels) before the trainer.");
            else
                source = new RowShufflingTransformer(_host, input, o.ShufflePoolSize, poolOnly: true, forceShuffle: true);
        }
        loss = state.LastLoss; // a resumed run that takes no step reports the checkpoint's loss
        var buffer = new float[o.BatchSize * plan.Shape.Size];
        var labels = new long[o.BatchSize];
        var clock = Stopwatch.StartNew();
        double lossSum = 0;
        int lossCount = 0;
        bool stopped = false;
        try
        {
            if (group is not null) trainer.JoinDataParallel(group);
            var parallel = trainer.DataParallel;
            while (!stopped && step < totalSteps)
            {
                if (o.MaximumNumberOfEpochs is { } maxEpochs && state.Epoch >= maxEpochs)
                {
                    ch.Info($"McDit: stopping after {state.Epoch} epochs (MaximumNumberOfEpochs) at step {step} of {totalSteps}.");
                    break;
                }
                CheckAlive(o, parallel);
                // Epoch e's order depends only on (seed, e), so a resumed run re-reads the same order and skips what it used.
                var random = new Random(unchecked((int)(seed * 1_000_003 + state.Epoch)));
                using var cursor = source.GetRowCursor(plan.InputColumns(source.Schema), random);
                var reader = plan.CreateReader(cursor, o);
                long rowsThisEpoch = 0;
                for (long b = 0; b < state.BatchInEpoch; b++) rowsThisEpoch += reader.ReadBatch(buffer, labels, o.BatchSize, rank, worldSize, out _);
                while (step < totalSteps)
                {
                    CheckAlive(o, parallel);
                    // n rows of the global batch; this rank holds `kept` of them (all of them when training alone).
                    int n = reader.ReadBatch(buffer, labels, o.BatchSize, rank, worldSize, out int kept);
                    if (n == 0) break;
                    rowsThisEpoch += n;
                    if (step >= o.NumberOfSteps && o.UnmaskTuningSteps > 0 && state.Stage == 1)
                    {
                        trainer.StartUnmaskTuning();
                        ch.Info($"McDit: step {step}: unmasking tuning for {o.UnmaskTuningSteps} steps (mask ratio 0, learning rate halved).");
                    }
                    LossBreakdown breakdown;
                    using (var scope = NewDisposeScope())
                    {
                        var images = torch.tensor(buffer.AsSpan(0, kept * plan.Shape.Size).ToArray(),
                            new long[] { kept, plan.Shape.Channels, plan.Shape.Height, plan.Shape.Width });
                        var y = plan.NumberOfClasses > 0 ? torch.tensor(labels.AsSpan(0, kept).ToArray(), new long[] { kept }) : null;
                        breakdown = trainer.Step(images, y, parallel?.Shard(n));
                    }
                    state.BatchInEpoch++;
                    Volatile.Write(ref loss, breakdown.Total);
                    lossSum += breakdown.Total;
                    lossCount++;
                    Interlocked.Exchange(ref step, state.Step);
                    if (isMain) o.StepCallback?.Invoke(new McDitTrainingStep(trainer, totalSteps, breakdown, clock.Elapsed, plan.ClassNames, plan.NumberOfClasses));
                    if (isMain && (step % o.LoggingInterval == 0 || step == totalSteps))
                    {
                        ch.Info($"McDit: step {step}/{totalSteps}, epoch {state.Epoch}, loss {lossSum / lossCount:F4} " +
                            $"(mean of the last {lossCount}), {clock.Elapsed.TotalSeconds:F1} s.");
                        lossSum = 0;
                        lossCount = 0;
                    }
                    if (isMain && checkpoints is not null && o.CheckpointInterval > 0 && step % o.CheckpointInterval == 0 && step < totalSteps)
                        checkpoints.Save(trainer, regular);
                }
                if (rowsThisEpoch == 0)
                {
                    if (state.Epoch == 0)
                        throw new InvalidOperationException(
                            $"The training data has no rows (image column '{o.ImageColumnName}'); expected at least one image.");
                    stopped = true;
                }
                if (step < totalSteps)
                {
                    ch.Trace($"McDit: epoch {state.Epoch} done ({rowsThisEpoch} rows).");
                    state.Epoch++;
                    state.BatchInEpoch = 0;
                }
            }
        }
        catch (OperationCanceledException) when (checkpoints is not null)
        {
            // Cancelled before the first step of a resumed run: the checkpoint it resumed from already holds this state.
            if (isMain && (step > firstStep || resumeFrom is null))
            {
                var saved = checkpoints.Save(trainer, regular);
                ch.Info($"McDit: cancelled at step {step}; checkpoint written to {saved}.");
            }
            throw;
        }
        catch (Exception e) when (group is not null && e is not OperationCanceledException)
        {
            // The other ranks would wait for this one until their collectives time out: end the job now.
            group.Abort($"training failed at step {step}: {e.GetType().Name}: {e.Message}");
            throw;
        }
        // A resumed run that had nothing left to do leaves its checkpoints as they are.
        if (isMain && checkpoints is not null && step > firstStep) checkpoints.Save(trainer, regular);
        pch.Checkpoint(loss, step);

        var settings = new McDitModelSettings
        {
            Model = trainer.Config,
            Method = trainer.Options.Method.Method,
            SigmaData = trainer.Options.Method.SigmaData,
            Channels = plan.Shape.Channels,
            InputMinimum = o.InputMinimum,
            InputMaximum = o.InputMaximum,
            Height = plan.Shape.Height,
            Width = plan.Shape.Width,
            NumberOfClasses = plan.NumberOfClasses,
            ClassNames = plan.ClassNames,
            LabelColumnName = o.LabelColumnName,
            SeedColumnName = o.SeedColumnName,
            GeneratedImageColumnName = o.GeneratedImageColumnName,
            GeneratedPixelsColumnName = o.GeneratedPixelsColumnName,
            SamplingSteps = o.SamplingSteps,
            Solver = o.Solver,
            GuidanceScale = o.GuidanceScale,
            GuidanceSigmaMin = o.GuidanceSigmaMin,
            GuidanceSigmaMax = double.IsPositiveInfinity(o.GuidanceSigmaMax) ? null : o.GuidanceSigmaMax,
            AlternatingShift = o.AlternatingShift,
            AlternatingShiftSigmaMax = double.IsPositiveInfinity(o.AlternatingShiftSigmaMax) ? null : o.AlternatingShiftSigmaMax,
            BatchSize = o.GenerationBatchSize,
            Seed = o.GenerationSeed,
            Device = o.Device,
            TrainedSteps = step,
            FinalLoss = loss,
        };
        // The generator owns a copy of the weight EMA; the trainer (optimizer state, branches) is released.
        var network = new MaskedDiffusionTransformer(trainer.Config);
        Checkpoint.LoadInto(network, trainer.EmaModel.state_dict(), "the trained weight EMA");
        network.to(trainer.Device);
        ch.Info($"McDit: trained {step} steps in {clock.Elapsed.TotalSeconds:F1} s; final loss {loss:F4}.");
        return new McDitModel(_host, settings, network, decoder: decoder);
    }

    void CheckAlive(Options o, DataParallel? parallel)
    {
        if (parallel is null)
        {
            _host.CheckAlive();
            o.CancellationToken.ThrowIfCancellationRequested();
            return;
        }
        // Ranks see a cancellation at different moments; they agree before each step, so all stop after the same one.
        bool stop = o.CancellationToken.IsCancellationRequested;
        try { _host.CheckAlive(); }
        catch (OperationCanceledException) { stop = true; }
        if (parallel.AnyRank(stop))
            throw new OperationCanceledException("Training was cancelled on at least one rank of the data-parallel job; every rank stops after the same step.");
    }

    /// <summary>Loads the trainer of a checkpoint, checking that it was made for this data and these options.</summary>
    static DiffusionTrainer ResumeTrainer(string folder, DiffusionTransformerConfig backbone, Options o, IChannel ch)
    {
        // Loading checks the checkpoint itself (a damaged one is passed over); the shape check is about the caller's options.
        var trainer = Checkpoint.Load(folder, o.Device);
        var expected = (o.MethodOptions ?? MethodOptions.For(o.Method)).ConfigureModel(backbone);
        if (trainer.Config != expected)
        {
            var saved = trainer.Config;
            trainer.Dispose();
            throw new InvalidOperationException(
                $"The checkpoint in '{folder}' holds a model of shape {saved}, but these options and data make {expected}. " +
                "Resume with the options and data the run started with, or train into a new CheckpointFolder.");
        }
        if (trainer.Options.Method != (o.MethodOptions ?? MethodOptions.For(o.Method)))
            ch.Warning($"McDit: resuming with the method options stored in the checkpoint ({trainer.Options.Method.Method}); the options given differ.");
        return trainer;
    }
}
