namespace McDit.Torch.Training;

/// <summary>
/// Every switch of the training objective. <see cref="For"/> gives the defaults of DiT, MaskDiT and MC-DiT
/// (method.md); the baselines are configurations of the same objective, not separate code.
/// </summary>
public sealed record MethodOptions
{
    /// <summary>The method these options describe.</summary>
    public TrainingMethod Method { get; init; } = TrainingMethod.McDiT;
    /// <summary>Fraction r of tokens masked per sample, in [0, 1). 0 trains on all tokens.</summary>
    public double MaskRatio { get; init; } = 0.5;
    /// <summary>Weight of the term on masked tokens (MaskDiT's MAE coefficient, 0.1).</summary>
    public double MaeLossWeight { get; init; } = 0.1;
    /// <summary>Probability that a label is replaced by the null label during training (for guidance).</summary>
    public double LabelDropout { get; init; } = 0.1;

    /// <summary>MC-DiT: where clean tokens enter.</summary>
    public CleanInto CleanInto { get; init; } = CleanInto.Decoder;
    /// <summary>MC-DiT: what the main branch reconstructs on masked tokens.</summary>
    public ReconstructionTarget ReconstructionTarget { get; init; } = ReconstructionTarget.CleanAndNoisy;
    /// <summary>MC-DiT: the noisy EMA branch (no clean information; denoises visible tokens).</summary>
    public bool NoisyBranch { get; init; } = true;
    /// <summary>MC-DiT: the clean EMA branch (clean visible tokens; reconstructs clean masked patches).</summary>
    public bool CleanBranch { get; init; } = true;
    /// <summary>MC-DiT: what the branches copy.</summary>
    public BranchScope BranchScope { get; init; } = BranchScope.Decoder;
    /// <summary>MC-DiT: EMA decay m of the branches, θb ← m·θb + (1 − m)·θ.</summary>
    public double BranchEmaDecay { get; init; } = 0.999;
    /// <summary>MC-DiT: weight α of the noisy branch loss.</summary>
    public double NoisyBranchWeight { get; init; } = 1.0;
    /// <summary>MC-DiT: weight β of the clean branch loss.</summary>
    public double CleanBranchWeight { get; init; } = 0.1;
    /// <summary>
    /// MC-DiT: fraction of each batch's rows (the first ⌈f·N⌉, whose σ, masks and labels are random) that also pass the
    /// clean branch, in (0, 1]; 1 (the method as specified) runs it on every row. The clean branch's encoder pass over
    /// the clean visible tokens is about half a DiT step (docs/benchmarks.md), so 0.25 brings MC-DiT's step to about
    /// DiT's cost. Its loss is scaled by N / ⌈f·N⌉, so the batch mean keeps its expected value and β its meaning.
    /// </summary>
    public double CleanBranchFraction { get; init; } = 1.0;

    /// <summary>
    /// Pixels by which half of the training images (drawn per row) are rolled along both axes; 0: none. Trains the model
    /// on the images the sampler's <see cref="Diffusion.SamplerOptions.AlternatingShift"/> shows it, so that a patch
    /// model can be sampled with its patch borders moving at every step.
    /// </summary>
    public int ShiftAugmentation { get; init; }

    /// <summary>EDM: mean of ln σ during training.</summary>
    public double PMean { get; init; } = -1.2;
    /// <summary>EDM: standard deviation of ln σ during training.</summary>
    public double PStd { get; init; } = 1.2;
    /// <summary>EDM: standard deviation of the data.</summary>
    public double SigmaData { get; init; } = 0.5;
    /// <summary>Noise level at which the clean branch sees its clean inputs (σ → σ_min).</summary>
    public double CleanSigma { get; init; } = 0.002;

    /// <summary>True when clean tokens enter the main branch (MC-DiT with masking).</summary>
    public bool UsesCleanInputs => Method == TrainingMethod.McDiT && MaskRatio > 0;
    /// <summary>True when any EMA branch is active.</summary>
    public bool UsesBranches => UsesCleanInputs && (NoisyBranch || CleanBranch);

    /// <summary>The defaults of a method (method.md §2–4).</summary>
    public static MethodOptions For(TrainingMethod method) => method switch
    {
        TrainingMethod.DiT => new MethodOptions { Method = method, MaskRatio = 0, MaeLossWeight = 0, NoisyBranch = false, CleanBranch = false },
        TrainingMethod.MaskDiT => new MethodOptions { Method = method, MaskRatio = 0.5, MaeLossWeight = 0.1, NoisyBranch = false, CleanBranch = false },
        TrainingMethod.McDiT => new MethodOptions { Method = method },
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown training method."),
    };

    /// <summary>
    /// Stage 2, "unmasking tuning": r = 0, no term on masked tokens, no clean inputs and no branches. The
    /// learning rate is halved by the trainer.
    /// </summary>
    public MethodOptions ForUnmaskTuning() => this with { MaskRatio = 0, MaeLossWeight = 0, NoisyBranch = false, CleanBranch = false };

    /// <summary>Checks every value and returns the options; throws naming the option otherwise.</summary>
    public MethodOptions Validated() => Validated((name, value) => $"Training option {name} = {value}");

    /// <summary>
    /// Checks every value and returns the options; otherwise throws an <see cref="ArgumentException"/> whose
    /// <see cref="ArgumentException.ParamName"/> is the property and whose message starts with <paramref name="describe"/>'s
    /// wording of the property and its value (a command line names its flag there, e.g. "--p-mean 50").
    /// </summary>
    public MethodOptions Validated(Func<string, object, string> describe)
    {
        ArgumentNullException.ThrowIfNull(describe);
        void Require(bool ok, string name, object value, string expected)
        {
            if (!ok) throw new ArgumentException($"{describe(name, value)} is invalid: expected {expected}.", name);
        }
        Require(Enum.IsDefined(Method), nameof(Method), Method, "DiT, MaskDiT or McDiT");
        Require(Enum.IsDefined(CleanInto), nameof(CleanInto), CleanInto, "Decoder or Encoder");
        Require(Enum.IsDefined(ReconstructionTarget), nameof(ReconstructionTarget), ReconstructionTarget, "CleanOnly, AllClean or CleanAndNoisy");
        Require(Enum.IsDefined(BranchScope), nameof(BranchScope), BranchScope, "Decoder or DecoderAndEncoder");
        Require(MaskRatio >= 0 && MaskRatio < 1, nameof(MaskRatio), MaskRatio, "a value in [0, 1)");
        Require(Method != TrainingMethod.DiT || MaskRatio == 0, nameof(MaskRatio), MaskRatio, "0 for DiT (it has no decoder to fill masked tokens)");
        Require(MaeLossWeight >= 0 && double.IsFinite(MaeLossWeight), nameof(MaeLossWeight), MaeLossWeight, "a finite value ≥ 0");
        Require(LabelDropout >= 0 && LabelDropout <= 1, nameof(LabelDropout), LabelDropout, "a probability in [0, 1] (0 leaves no unconditional model for guidance)");
        Require(BranchEmaDecay >= 0 && BranchEmaDecay <= 1, nameof(BranchEmaDecay), BranchEmaDecay, "a value in [0, 1]");
        Require(NoisyBranchWeight >= 0 && double.IsFinite(NoisyBranchWeight), nameof(NoisyBranchWeight), NoisyBranchWeight, "a finite value ≥ 0");
        Require(CleanBranchWeight >= 0 && double.IsFinite(CleanBranchWeight), nameof(CleanBranchWeight), CleanBranchWeight, "a finite value ≥ 0");
        Require(CleanBranchFraction > 0 && CleanBranchFraction <= 1, nameof(CleanBranchFraction), CleanBranchFraction, "a fraction of the batch in (0, 1]");
        Require(ShiftAugmentation >= 0 && ShiftAugmentation <= 64, nameof(ShiftAugmentation), ShiftAugmentation, "0..64 pixels (half the patch size, or 0)");
        Require(double.IsFinite(PMean) && Math.Abs(PMean) <= 20, nameof(PMean), PMean, "a finite ln σ in [-20, 20], e.g. -1.2");
        Require(PStd > 0 && PStd <= 20, nameof(PStd), PStd, "a spread of ln σ in (0, 20], e.g. 1.2");
        Require(SigmaData > 0 && double.IsFinite(SigmaData), nameof(SigmaData), SigmaData, "a finite value > 0");
        Require(CleanSigma > 0 && double.IsFinite(CleanSigma), nameof(CleanSigma), CleanSigma, "a finite value > 0");
        return this;
    }

    /// <summary>The model shape this method needs on top of a DiT preset (decoder, [MASK] token, clean inputs).</summary>
    public Models.DiffusionTransformerConfig ConfigureModel(Models.DiffusionTransformerConfig backbone)
    {
        var config = backbone;
        if (Method != TrainingMethod.DiT && !config.HasDecoder) config = config.WithDefaultDecoder();
        return Method switch
        {
            TrainingMethod.DiT => config,
            TrainingMethod.MaskDiT => config with { UseMaskToken = true },
            _ => config with
            {
                UseMaskToken = true,
                CleanDecoderInput = CleanInto == CleanInto.Decoder,
                CleanEncoderInput = CleanInto == CleanInto.Encoder,
            },
        };
    }
}
