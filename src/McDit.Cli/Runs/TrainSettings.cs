using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;

namespace McDit.Cli.Runs;

/// <summary>Everything a training run was started with; stored as run.json in the run folder.</summary>
public sealed record TrainSettings
{
    /// <summary>Data source: "embedded", "fashion-mnist" or a folder of IDX files.</summary>
    public string Data { get; init; } = "embedded";
    /// <summary>Model preset, e.g. Tiny/4 or S/2.</summary>
    public string Model { get; init; } = "Tiny/4";
    /// <summary>DiT, MaskDiT or MC-DiT.</summary>
    public TrainingMethod Method { get; init; } = TrainingMethod.McDiT;
    /// <summary>Add a learned 3×3 convolution over the output image (U-ViT's), so pixels at patch borders agree.</summary>
    public bool OutputConv { get; init; }
    /// <summary>Output windows overlapping their neighbours by this many pixels on each side (0..p/2), blended across patch borders.</summary>
    public int OutputOverlap { get; init; }
    /// <summary>Mask ratio; null keeps the method's default.</summary>
    public double? MaskRatio { get; init; }
    /// <summary>Masked pre-training steps (stage 1).</summary>
    public long Steps { get; init; } = 300;
    /// <summary>Unmasking-tuning steps after stage 1 (stage 2).</summary>
    public long UnmaskSteps { get; init; }
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>AdamW learning rate.</summary>
    public double LearningRate { get; init; } = 3e-4;
    /// <summary>Decay of the sampling EMA.</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Steps of linear learning-rate warm-up (0: none).</summary>
    public long LrWarmup { get; init; }
    /// <summary>Learning-rate decay over the run's total steps: Constant or Cosine.</summary>
    public LearningRateDecay LrDecay { get; init; } = LearningRateDecay.Constant;
    /// <summary>MC-DiT: decay of the EMA branches (null: the method's default, 0.999).</summary>
    public double? BranchEmaDecay { get; init; }
    /// <summary>MC-DiT: fraction of each batch that passes the clean branch (null: the method's, 1).</summary>
    public double? CleanBranchFraction { get; init; }
    /// <summary>EDM: mean of ln σ of the training noise levels (null: EDM's −1.2).</summary>
    public double? PMean { get; init; }
    /// <summary>EDM: standard deviation of ln σ of the training noise levels (null: EDM's 1.2).</summary>
    public double? PStd { get; init; }
    /// <summary>Probability that a training label is replaced by the null label, which guidance needs (null: 0.1).</summary>
    public double? LabelDropout { get; init; }
    /// <summary>Pixels by which half of the training images are rolled, so the model knows the images of the sampler's shift (null: 0).</summary>
    public int? TrainShift { get; init; }
    /// <summary>Gradient clipping (0 = none).</summary>
    public double GradClip { get; init; }
    /// <summary>Seed of initialisation, data order and every draw.</summary>
    public long Seed { get; init; }
    /// <summary>cpu, cuda, cuda:N or auto.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>Float32 or BFloat16.</summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Float32;
    /// <summary>Write a sample grid every this many steps (0: only at the end).</summary>
    public long SampleEvery { get; init; } = 100;
    /// <summary>Write a checkpoint every this many steps (0: only at the end).</summary>
    public long CheckpointEvery { get; init; } = 100;
    /// <summary>Sampler steps for the grids.</summary>
    public int SamplerSteps { get; init; } = 18;
    /// <summary>Sampler (Heun or Euler) for the grids.</summary>
    public SamplerSolver Solver { get; init; } = SamplerSolver.Heun;
    /// <summary>Classifier-free guidance scale for the grids (1 = none).</summary>
    public double Guidance { get; init; } = 1.5;
    /// <summary>Guide the grids, the evaluations and the trained model's sampler only at σ above this (0: every step).</summary>
    public double GuidanceSigmaMin { get; init; }
    /// <summary>… and only at σ up to this (null: no upper end).</summary>
    public double? GuidanceSigmaMax { get; init; }
    /// <summary>Pixels by which every other sampler evaluation sees the image rolled (grids, evaluations, the trained model); 0: none.</summary>
    public int SamplerShift { get; init; }
    /// <summary>… only at σ up to this (null: at every other evaluation).</summary>
    public double? SamplerShiftBelow { get; init; }
    /// <summary>A Stable Diffusion VAE (diffusers folder or .safetensors): train in its latent space, decode samples back to images.</summary>
    public string? Vae { get; init; }
    /// <summary>Side images from an image folder are brought to (the VAE divides it by 8).</summary>
    public int ImageSize { get; init; } = 32;
    /// <summary>Measure FD-ResNet18 against held-out images every this many steps (0: never during training).</summary>
    public long FdEvery { get; init; }
    /// <summary>Generated images per FD measurement during training.</summary>
    public int FdSamples { get; init; } = 200;
    /// <summary>Samples per class row in the grids.</summary>
    public int GridColumns { get; init; } = 8;

    /// <summary>Total optimizer steps of the run.</summary>
    public long TotalSteps => Steps + UnmaskSteps;

    /// <summary>The ML.NET trainer options these settings stand for (columns as McDit's loaders name them).</summary>
    public McDit.MLNet.Trainers.McDitTrainer.Options ToTrainerOptions() => new()
    {
        ImageColumnName = Vae is null ? "Image" : "Latent", LabelColumnName = "Label", LatentDecoderPath = Vae,
        Model = Model, OutputConvolution = OutputConv, OutputOverlap = OutputOverlap, Method = Method, MethodOptions = ToMethodOptions(),
        NumberOfSteps = checked((int)Steps), UnmaskTuningSteps = checked((int)UnmaskSteps),
        BatchSize = BatchSize, LearningRate = LearningRate, EmaDecay = EmaDecay, GradientClipNorm = GradClip,
        LearningRateWarmupSteps = checked((int)LrWarmup), LearningRateDecay = LrDecay,
        Seed = unchecked((int)Seed), Device = Device, Precision = Precision,
        SamplingSteps = SamplerSteps, Solver = Solver, GuidanceScale = Guidance, GenerationSeed = Seed,
        GuidanceSigmaMin = GuidanceSigmaMin, GuidanceSigmaMax = GuidanceSigmaMax ?? double.PositiveInfinity,
        AlternatingShift = SamplerShift, AlternatingShiftSigmaMax = SamplerShiftBelow ?? double.PositiveInfinity,
    };

    /// <summary>The method's defaults with the options given on the command line.</summary>
    private MethodOptions ToMethodOptions()
    {
        var method = MethodOptions.For(Method);
        if (MaskRatio is { } r) method = method with { MaskRatio = r };
        if (BranchEmaDecay is { } m) method = method with { BranchEmaDecay = m };
        if (CleanBranchFraction is { } f) method = method with { CleanBranchFraction = f };
        if (PMean is { } pMean) method = method with { PMean = pMean };
        if (PStd is { } pStd) method = method with { PStd = pStd };
        if (LabelDropout is { } dropout) method = method with { LabelDropout = dropout };
        if (TrainShift is { } trainShift) method = method with { ShiftAugmentation = trainShift };
        return method;
    }

    /// <summary>The command-line flag of each <see cref="MethodOptions"/> property these settings set.</summary>
    private static readonly Dictionary<string, string> MethodOptionFlags = new()
    {
        [nameof(MethodOptions.MaskRatio)] = "mask-ratio", [nameof(MethodOptions.BranchEmaDecay)] = "branch-ema-decay",
        [nameof(MethodOptions.CleanBranchFraction)] = "clean-branch-fraction",
        [nameof(MethodOptions.PMean)] = "p-mean", [nameof(MethodOptions.PStd)] = "p-std",
        [nameof(MethodOptions.LabelDropout)] = "label-dropout", [nameof(MethodOptions.ShiftAugmentation)] = "train-shift",
    };

    /// <summary>The sampler of the run's grids and evaluations.</summary>
    public SamplerOptions ToSamplerOptions() => new()
    {
        Steps = SamplerSteps, Solver = Solver, GuidanceScale = Guidance,
        GuidanceSigmaMin = GuidanceSigmaMin, GuidanceSigmaMax = GuidanceSigmaMax ?? double.PositiveInfinity,
        AlternatingShift = SamplerShift, AlternatingShiftSigmaMax = SamplerShiftBelow ?? double.PositiveInfinity,
    };

    /// <summary>Checks the values and returns the settings; throws naming the option otherwise.</summary>
    public TrainSettings Validated()
    {
        static void Require(bool ok, string option, object value, string expected)
        {
            if (!ok) throw new ArgumentException($"--{option} {value} is invalid: expected {expected}.");
        }
        Require(!string.IsNullOrWhiteSpace(Data), "data", Data ?? "null", "'embedded', 'fashion-mnist' or a data folder");
        Require(!string.IsNullOrWhiteSpace(Model), "model", Model ?? "null", "a preset such as Tiny/4 or S/2");
        DiffusionTransformerConfig.ParseName(Model!);
        Require(Enum.IsDefined(Method), "method", Method, "DiT, MaskDiT or McDiT");
        Require(Enum.IsDefined(Precision), "precision", Precision, "Float32 or BFloat16");
        Require(Enum.IsDefined(Solver) && Solver != SamplerSolver.Ddpm, "solver", Solver, "Heun or Euler (Ddpm is for DiT weights)");
        Require(Steps >= 1, "steps", Steps, "at least one masked pre-training step");
        Require(UnmaskSteps >= 0, "unmask-steps", UnmaskSteps, "≥ 0");
        Require(Steps <= int.MaxValue && UnmaskSteps <= int.MaxValue && TotalSteps <= int.MaxValue, "steps", Steps,
            $"at most {int.MaxValue} steps in total (--steps + --unmask-steps)");
        Require(BatchSize >= 1 && BatchSize <= 65_536, "batch-size", BatchSize, "1..65536 images per step");
        Require(LearningRate > 0 && LearningRate <= 10 && double.IsFinite(LearningRate), "lr", LearningRate, "a learning rate in (0, 10]");
        Require(EmaDecay >= 0 && EmaDecay <= 1, "ema-decay", EmaDecay, "a value in [0, 1]");
        Require(LrWarmup >= 0 && LrWarmup <= int.MaxValue, "lr-warmup", LrWarmup, "0 or more warm-up steps");
        Require(Enum.IsDefined(LrDecay), "lr-decay", LrDecay, "Constant or Cosine");
        Require(BranchEmaDecay is null || Method == TrainingMethod.McDiT, "branch-ema-decay", BranchEmaDecay!, "no value: only MC-DiT has EMA branches");
        Require(CleanBranchFraction is null || Method == TrainingMethod.McDiT, "clean-branch-fraction", CleanBranchFraction!, "no value: only MC-DiT has a clean branch");
        Require(GradClip >= 0 && double.IsFinite(GradClip), "grad-clip", GradClip, "a finite value ≥ 0 (0: no clipping)");
        Require(TorchBackend.IsDeviceName(Device), "device", Device ?? "null", "cpu, cuda, cuda:N or auto");
        Require(SampleEvery >= 0, "sample-every", SampleEvery, "≥ 0");
        Require(CheckpointEvery >= 0, "checkpoint-every", CheckpointEvery, "≥ 0");
        Require(SamplerSteps >= 1 && SamplerSteps <= 1_000, "sampler-steps", SamplerSteps, "1..1000");
        Require(double.IsFinite(Guidance), "guidance", Guidance, "a finite guidance scale");
        Require(GuidanceSigmaMin >= 0 && double.IsFinite(GuidanceSigmaMin) && (GuidanceSigmaMax is not { } high || high > GuidanceSigmaMin),
            "guidance-interval", $"{GuidanceSigmaMin},{GuidanceSigmaMax?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "inf"}",
            "LOW or LOW,HIGH noise levels with 0 ≤ LOW < HIGH");
        Require(SamplerShift >= 0 && SamplerShift <= 64, "shift", SamplerShift, "0..64 pixels (half the patch size, or 0)");
        Require(SamplerShiftBelow is not { } below || below > 0 && double.IsFinite(below), "shift-below", SamplerShiftBelow!, "a noise level σ > 0");
        Require(GridColumns >= 1 && GridColumns <= 64, "grid-columns", GridColumns, "1 to 64");
        Require(ImageSize >= 8 && ImageSize <= 4096, "image-size", ImageSize, "8..4096 pixels");
        Require(FdEvery >= 0, "fd-every", FdEvery, "≥ 0 (0: no FD during training)");
        Require(FdEvery == 0 || FdSamples >= 2, "fd-samples", FdSamples, "at least 2");
        Require(Vae is null || File.Exists(Vae) || Directory.Exists(Vae), "vae", Vae!, "a diffusers VAE folder (config.json + diffusion_pytorch_model.safetensors) or a .safetensors file; sd-vae-ft-mse is on the Hugging Face Hub (stabilityai/sd-vae-ft-mse)");
        // The objective's own bounds (one table for the library and the command line), worded with the flag.
        ToMethodOptions().Validated((name, value) => MethodOptionFlags.TryGetValue(name, out var flag) ? $"--{flag} {value}" : $"Training option {name} = {value}");
        return this;
    }
}
