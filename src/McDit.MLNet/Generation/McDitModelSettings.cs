using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Training;

namespace McDit.MLNet.Generation;

/// <summary>
/// Everything a <see cref="McDitModel"/> needs besides its weights; stored as <c>config.json</c> beside
/// <c>model.safetensors</c> inside the ML.NET model zip.
/// </summary>
sealed record McDitModelSettings
{
    public const string CurrentFormat = "mcdit-mlnet-model-1";

    public string Format { get; init; } = CurrentFormat;
    /// <summary>The network's shape (with what the method added: decoder, [MASK] token, clean inputs).</summary>
    public required DiffusionTransformerConfig Model { get; init; }
    public TrainingMethod Method { get; init; } = TrainingMethod.McDiT;
    public double SigmaData { get; init; } = 0.5;
    public int Channels { get; init; }
    /// <summary>Pixel value the model's −1 maps to (the trainer's InputMinimum); GeneratedPixels come out in [InputMinimum, InputMaximum].</summary>
    public float InputMinimum { get; init; }
    /// <summary>Pixel value the model's +1 maps to (the trainer's InputMaximum).</summary>
    public float InputMaximum { get; init; } = 1f;
    public int Height { get; init; }
    public int Width { get; init; }
    public int NumberOfClasses { get; init; }
    public string[]? ClassNames { get; init; }
    public string? LabelColumnName { get; init; }
    public string? SeedColumnName { get; init; }
    public string GeneratedImageColumnName { get; init; } = "GeneratedImage";
    public string GeneratedPixelsColumnName { get; init; } = "GeneratedPixels";
    public int SamplingSteps { get; init; } = 18;
    public SamplerSolver Solver { get; init; } = SamplerSolver.Heun;
    public double GuidanceScale { get; init; } = 1.0;
    /// <summary>Guidance only at σ above this (0: at every step); see <see cref="SamplerOptions.GuidanceSigmaMin"/>.</summary>
    public double GuidanceSigmaMin { get; init; }
    /// <summary>Guidance only at σ up to this; null: no upper end.</summary>
    public double? GuidanceSigmaMax { get; init; }
    /// <summary>Every other sampler evaluation on the image rolled by this many pixels (see <see cref="SamplerOptions.AlternatingShift"/>); 0: none.</summary>
    public int AlternatingShift { get; init; }
    /// <summary>The shift only at σ up to this; null: at every other evaluation.</summary>
    public double? AlternatingShiftSigmaMax { get; init; }
    public double SigmaMin { get; init; } = 0.002;
    public double SigmaMax { get; init; } = 80;
    public double Rho { get; init; } = 7;
    public int BatchSize { get; init; } = 64;
    public long Seed { get; init; }
    public string Device { get; init; } = "auto";
    public long TrainedSteps { get; init; }
    public double FinalLoss { get; init; } = double.NaN;
    /// <summary>The model zip holds a VAE (<c>vae.safetensors</c>) that decodes the generated latents.</summary>
    public bool HasLatentDecoder { get; init; }

    /// <summary>Checks the values a loaded or requested model depends on; throws naming the setting.</summary>
    public McDitModelSettings Validated()
    {
        if (Format != CurrentFormat)
            throw new InvalidDataException($"McDit model settings have format '{Format}'; this version reads '{CurrentFormat}'.");
        if (Model is null) throw new InvalidDataException("McDit model settings have no \"Model\" section.");
        Model.Validated();
        if (!Enum.IsDefined(Method))
            throw new ArgumentOutOfRangeException(nameof(Method), Method, "The method must be DiT, MaskDiT or McDiT.");
        if (Channels != Model.InChannels || Height != Model.InputSize || Width != Model.InputSize)
            throw new InvalidDataException(
                $"McDit model settings say {Channels}×{Height}×{Width} images but the network takes {Model.InChannels}×{Model.InputSize}×{Model.InputSize}.");
        if (NumberOfClasses != Model.NumClasses)
            throw new InvalidDataException($"McDit model settings say {NumberOfClasses} classes but the network has {Model.NumClasses}.");
        if (ClassNames is not null && (ClassNames.Length != NumberOfClasses || ClassNames.Any(n => n is null)))
            throw new InvalidDataException($"McDit model settings have {ClassNames.Length} class names for {NumberOfClasses} classes.");
        if (!double.IsFinite(SigmaData) || SigmaData <= 0)
            throw new ArgumentOutOfRangeException(nameof(SigmaData), SigmaData, "σ_data must be a positive number.");
        if (!float.IsFinite(InputMinimum) || !float.IsFinite(InputMaximum) || InputMaximum <= InputMinimum)
            throw new ArgumentOutOfRangeException(nameof(InputMaximum), $"[{InputMinimum}, {InputMaximum}]", "The pixel range must be finite with InputMinimum < InputMaximum.");
        if (SamplingSteps < 1 || SamplingSteps > MaxSamplingSteps)
            throw new ArgumentOutOfRangeException(nameof(SamplingSteps), SamplingSteps, $"Sampling steps must be in 1..{MaxSamplingSteps} (18 is a good default).");
        if (!Enum.IsDefined(Solver))
            throw new ArgumentOutOfRangeException(nameof(Solver), Solver, "The solver must be Heun, Euler or Ddpm (DiT weights only).");
        if (!double.IsFinite(GuidanceScale))
            throw new ArgumentOutOfRangeException(nameof(GuidanceScale), GuidanceScale, "The guidance scale must be finite (1 = no guidance).");
        if (!(GuidanceSigmaMin >= 0) || !double.IsFinite(GuidanceSigmaMin) || GuidanceSigmaMax is { } high && !(high > GuidanceSigmaMin))
            throw new ArgumentOutOfRangeException(nameof(GuidanceSigmaMin), string.Create(System.Globalization.CultureInfo.InvariantCulture, $"({GuidanceSigmaMin}, {GuidanceSigmaMax?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "∞"}]"),
                "The guidance interval needs a finite lower end σ ≥ 0 and an upper end above it (or none).");
        if (AlternatingShift < 0)
            throw new ArgumentOutOfRangeException(nameof(AlternatingShift), AlternatingShift, "The alternating shift must be ≥ 0 pixels (half the patch size for a patch model; 0: none).");
        if (AlternatingShiftSigmaMax is { } shiftMax && !(shiftMax > 0))
            throw new ArgumentOutOfRangeException(nameof(AlternatingShiftSigmaMax), shiftMax, "The shift's largest σ must be > 0 (null: every other evaluation).");
        if (!(SigmaMin > 0) || !(SigmaMax > SigmaMin) || !double.IsFinite(SigmaMax) || !(Rho > 0) || !double.IsFinite(Rho))
            throw new ArgumentOutOfRangeException(nameof(SigmaMax), $"σ [{SigmaMin}, {SigmaMax}], ρ {Rho}", "The sampler needs finite 0 < σ_min < σ_max and ρ > 0.");
        if (BatchSize < 1 || BatchSize > MaxBatchSize)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"The generation batch size must be in 1..{MaxBatchSize}.");
        if (TrainedSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(TrainedSteps), TrainedSteps, "Trained steps must be ≥ 0.");
        if (!Torch.Runtime.TorchBackend.IsDeviceName(Device))
            throw new ArgumentOutOfRangeException(nameof(Device), Device, "The device must be cpu, cuda, cuda:N or auto.");
        if (string.IsNullOrWhiteSpace(GeneratedImageColumnName) || string.IsNullOrWhiteSpace(GeneratedPixelsColumnName) ||
            GeneratedImageColumnName == GeneratedPixelsColumnName)
            throw new ArgumentException(
                $"The generated image and pixel column names must be two different non-empty names; got '{GeneratedImageColumnName}' and '{GeneratedPixelsColumnName}'.");
        return this;
    }

    /// <summary>The most sampler steps a model may ask for.</summary>
    public const int MaxSamplingSteps = 10_000;
    /// <summary>The largest generation batch.</summary>
    public const int MaxBatchSize = 65_536;
}
