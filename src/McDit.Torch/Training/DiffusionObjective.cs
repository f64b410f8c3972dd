using McDit.Torch.Runtime;
using McDit.Torch.Diffusion;
using McDit.Torch.Distributed;
using McDit.Torch.Models;
using McDit.Torch.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// The training loss of DiT, MaskDiT and MC-DiT in one code path (method.md §2–4). Per sample: σ from a
/// log-normal, x_σ = x0 + σ·ε, D = c_skip·x_σ + c_out·F(c_in·x_σ, ln σ / 4, y); the EDM-weighted error
/// λ(σ)·‖D − x0‖² averaged over the visible tokens (all tokens when r = 0), plus, depending on the options,
/// a term on the masked tokens and MC-DiT's two branch losses.
/// </summary>
public sealed class DiffusionObjective
{
    private readonly EdmPreconditioning _edm;
    private readonly LogNormalSigma _sigmas;

    /// <summary>The switches of this objective.</summary>
    public MethodOptions Options { get; }

    /// <summary>Creates the objective.</summary>
    public DiffusionObjective(MethodOptions options)
    {
        Options = options.Validated();
        _edm = new EdmPreconditioning(options.SigmaData);
        _sigmas = new LogNormalSigma(options.PMean, options.PStd);
        _maeLossWeight = Options.MaeLossWeight.ToScalar();
        _noisyBranchWeight = Options.NoisyBranchWeight.ToScalar();
        _cleanBranchWeight = Options.CleanBranchWeight.ToScalar();
    }

    // The per-step constants as Scalars held by this object, not converted implicitly at each use: an implicit
    // TorchSharp Scalar is unreachable once its handle is read, so the finalizer thread could free it mid-call.
    private readonly Scalar _maeLossWeight, _noisyBranchWeight, _cleanBranchWeight;

    /// <summary>Random draws of one loss evaluation (all from the caller's generator, so runs are reproducible).</summary>
    /// <param name="Sigma">Noise level per row [N].</param>
    /// <param name="Noise">ε, shaped like the images.</param>
    /// <param name="Labels">The labels after label dropout, or null.</param>
    /// <param name="Mask">The patch mask, or null without masking.</param>
    /// <param name="Shifted">Which rows see their image rolled by <see cref="MethodOptions.ShiftAugmentation"/> (bool [N]), or null.</param>
    public sealed record Draws(Tensor Sigma, Tensor Noise, Tensor? Labels, PatchMask? Mask, Tensor? Shifted = null)
    {
        /// <summary>
        /// The draws of rows [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>): views of σ, ε and
        /// the labels, and a new mask; dispose the result to free that mask.
        /// </summary>
        public RowDraws Rows(int start, int count)
        {
            PatchMask? mask = null;
            if (Mask is not null)
                using (var rows = torch.arange(start, start + count, dtype: ScalarType.Int64, device: Mask.Mask.device))
                    mask = Mask.SelectRows(rows);
            return new RowDraws(new Draws(Sigma.narrow(0, start, count), Noise.narrow(0, start, count), Labels?.narrow(0, start, count), mask, Shifted?.narrow(0, start, count)));
        }
    }

    /// <summary>Some rows of a batch's <see cref="Draws"/>; disposing frees their mask.</summary>
    public sealed class RowDraws(Draws draws) : IDisposable
    {
        /// <summary>The draws of these rows.</summary>
        public Draws Draws { get; } = draws;
        /// <summary>Frees the rows' mask.</summary>
        public void Dispose() => Draws.Mask?.Dispose();
        /// <summary>The draws of these rows.</summary>
        public static implicit operator Draws(RowDraws rows) => rows.Draws;
    }

    /// <summary>
    /// Draws σ, ε, label dropout and the mask for a batch, on the CPU generator, then moves them to the device.
    /// With a <paramref name="shard"/> (data parallelism) <paramref name="x0"/> and <paramref name="labels"/> are this
    /// rank's rows of a global batch: the draws of the whole global batch are made, as one process would make them, and
    /// this rank keeps its rows, so the draws belong to the global sample whatever the number of ranks.
    /// </summary>
    public Draws Draw(MaskedDiffusionTransformer model, Tensor x0, Tensor? labels, Generator generator, BatchShard? shard = null)
    {
        var device = x0.device;
        var rows = shard is { IsWhole: false } ? shard.RowIndex(device) : null;
        Tensor Mine(Tensor t) => rows is null ? t : t.index_select(0, rows);
        int n = rows is null ? (int)x0.shape[0] : shard!.GlobalSize;
        var shape = x0.shape.ToArray();
        shape[0] = n;
        var sigma = Mine(_sigmas.Sample(n, generator, device));
        var noise = Mine(torch.randn(shape, dtype: ScalarType.Float32, generator: generator).to(device));
        Tensor? dropped = null;
        if (labels is not null && model.NullLabel >= 0)
        {
            using var scope = NewDisposeScope();
            var drop = Mine(torch.rand(n, generator: generator).lt(Options.LabelDropout).to(device));
            dropped = torch.where(drop, torch.full_like(labels, model.NullLabel), labels).MoveToOuterDisposeScope();
        }
        var mask = Options.MaskRatio > 0
            ? PatchMask.Random(n, model.Config.NumPatches, Options.MaskRatio, generator, device)
            : null;
        if (mask is not null && rows is not null)
            using (var whole = mask) mask = whole.SelectRows(rows);
        // Drawn last, and only when asked for, so runs without the augmentation draw exactly what they always drew.
        var shifted = Options.ShiftAugmentation > 0 ? Mine(torch.rand(n, generator: generator).lt(0.5).to(device)) : null;
        return new Draws(sigma, noise, dropped, mask, shifted);
    }

    /// <summary>
    /// Per-sample loss [N] and its breakdown for clean data x0 [N, C, H, W] (float32) with the given draws.
    /// <paramref name="noisyBranch"/> and <paramref name="cleanBranch"/> are MC-DiT's EMA branches, or null.
    /// </summary>
    public (Tensor PerSample, LossBreakdown Breakdown) Loss(
        MaskedDiffusionTransformer model, Tensor x0, Draws draws, ContextBranch? noisyBranch = null, ContextBranch? cleanBranch = null)
    {
        using var scope = NewDisposeScope();
        var o = Options;
        int p = model.Config.PatchSize, channels = model.Config.InChannels;
        var computeType = model.parameters().First().dtype;
        if (draws.Shifted is { } shifted)
            x0 = where(shifted.reshape(-1, 1, 1, 1), ImageShift.Roll(x0, o.ShiftAugmentation), x0);
        var sigma = draws.Sigma.reshape(-1, 1, 1, 1);
        var xNoisy = x0.Plus(draws.Noise * sigma);
        var weight = _edm.LossWeight(sigma);
        int n = (int)x0.shape[0];
        var mask = draws.Mask;
        bool noisyActive = mask is not null && o.UsesCleanInputs && o.NoisyBranch && noisyBranch is not null && o.NoisyBranchWeight > 0;
        bool cleanActive = mask is not null && o.UsesCleanInputs && o.CleanBranch && cleanBranch is not null && o.CleanBranchWeight > 0;
        // MC-DiT with clean tokens into the decoder: the noisy visible tokens (σ) and the clean-branch's clean visible tokens
        // (σ → σ_min) go through the shared embedding, conditioning and encoder as one batch of 2N rows, [noisy; clean].
        bool batched = cleanActive && o.CleanInto == CleanInto.Decoder && !cleanBranch!.HasOwnEncoder;
        Tensor c, noisyTokens;
        Tensor? cBoth = null, tokensBoth = null, cClean = null, cleanSigma = null;
        // The clean branch sees the first cleanRows rows only (all of them by default): CleanBranchFraction.
        int cleanRows = cleanActive ? CleanRows(n) : n;
        bool partClean = cleanRows < n;
        var x0Clean = partClean ? x0.narrow(0, 0, cleanRows) : x0;
        var labelsClean = partClean ? draws.Labels?.narrow(0, 0, cleanRows) : draws.Labels;
        if (batched)
        {
            cleanSigma = full(cleanRows, o.CleanSigma, dtype: ScalarType.Float32, device: x0.device);
            var labelsBoth = draws.Labels is null ? null : cat(new[] { draws.Labels, labelsClean! }, 0);
            cBoth = model.Condition(cat(new[] { _edm.CNoise(draws.Sigma), _edm.CNoise(cleanSigma) }, 0).to_type(computeType), labelsBoth);
            tokensBoth = model.Embed(cat(new[] { _edm.CIn(sigma) * xNoisy, _edm.CIn(cleanSigma.reshape(-1, 1, 1, 1)) * x0Clean }, 0).to_type(computeType));
            c = cBoth[..n];
            cClean = cBoth[n..];
            noisyTokens = tokensBoth[..n];
        }
        else
        {
            c = model.Condition(_edm.CNoise(draws.Sigma).to_type(computeType), draws.Labels);
            noisyTokens = model.Embed((_edm.CIn(sigma) * xNoisy).to_type(computeType));
        }

        Tensor Denoised(Tensor patchOutputs, Tensor x, Tensor s) =>
            (_edm.CSkip(s) * x).Plus(_edm.COut(s) * model.Unpatchify(patchOutputs).to_type(ScalarType.Float32)[.., ..channels]);

        Tensor perSample, maskedTerm = zeros(x0.shape[0], device: x0.device);
        Tensor noisyTerm = zeros_like(maskedTerm), cleanTerm = zeros_like(maskedTerm);
        if (mask is null)
        {
            var d = Denoised(model.Decode(model.Encode(noisyTokens, c), c, null, null), xNoisy, sigma);
            perSample = (weight * d.Minus(x0).square()).mean(new long[] { 1, 2, 3 });
        }
        else
        {
            var visible = mask.Mask.OneMinus();
            // The masks of the [noisy; clean] batch: every row, then the clean branch's rows.
            using var maskBoth = !batched ? null : !partClean ? mask.Tile(2) : mask.SelectRows(cat(new[] {
                arange(n, dtype: ScalarType.Int64), arange(cleanRows, dtype: ScalarType.Int64) }, 0));
            using var maskClean = partClean ? mask.SelectRows(arange(cleanRows, dtype: ScalarType.Int64)) : null;
            var cleanMask = maskClean ?? mask; // the clean branch's rows' masks
            Tensor MeanOver(Tensor perPatch, Tensor which) => (perPatch * which).sum(1) / which.sum(1);

            // Visible noisy tokens as the encoder sees them (with the "noisy" type embedding when clean tokens enter the encoder).
            Tensor NoisyVisibleTokens() => o.UsesCleanInputs && o.CleanInto == CleanInto.Encoder
                ? mask.GatherKept(model.AddTypeEmbedding(noisyTokens, zeros_like(mask.Mask)))
                : mask.GatherKept(noisyTokens);

            Tensor? encodedKept = null; // MaskDiT's encoder pass on the visible noisy tokens only
            Tensor? encodedBoth = null; // batched: [noisy visible; clean visible] through the encoder
            Tensor mainPatches;
            if (o.UsesCleanInputs && o.CleanInto == CleanInto.Encoder)
            {
                var cleanTokens = model.Embed((x0 / _edm.SigmaDataScalar).to_type(computeType));
                var isClean = mask.Mask.unsqueeze(-1).to_type(computeType);
                var mixed = model.AddTypeEmbedding((noisyTokens * isClean.OneMinus()).Plus(cleanTokens * isClean), mask.Mask);
                mainPatches = model.Decode(model.Encode(mixed, c), c, null, null);
            }
            else if (batched)
            {
                encodedBoth = model.Encode(maskBoth!.GatherKept(tokensBoth!), cBoth!);
                encodedKept = encodedBoth[..n];
                var fill = mask.GatherMasked(model.EmbedClean((x0 / _edm.SigmaDataScalar).to_type(computeType)));
                mainPatches = model.Decode(encodedKept, c, mask, fill);
            }
            else
            {
                encodedKept = model.Encode(NoisyVisibleTokens(), c);
                var fill = o.UsesCleanInputs
                    ? mask.GatherMasked(model.EmbedClean((x0 / _edm.SigmaDataScalar).to_type(computeType)))
                    : null; // [MASK] token
                mainPatches = model.Decode(encodedKept, c, mask, fill);
            }
            var d = Denoised(mainPatches, xNoisy, sigma);
            var errorPerPatch = Patches.PatchMean(weight * d.Minus(x0).square(), p);
            perSample = MeanOver(errorPerPatch, visible);

            bool noisyTarget = o.Method == TrainingMethod.MaskDiT
                || (o.UsesCleanInputs && o.ReconstructionTarget == ReconstructionTarget.CleanAndNoisy);
            if (o.MaeLossWeight > 0 && noisyTarget)
                maskedTerm = _maeLossWeight * NormalizedPatchError(d, xNoisy, mask.Mask, p);
            else if (o.MaeLossWeight > 0 && o.UsesCleanInputs && o.ReconstructionTarget == ReconstructionTarget.AllClean)
                maskedTerm = _maeLossWeight * MeanOver(errorPerPatch, mask.Mask);

            // One branch-decoder call for both branches when they are one module (the trainer shares them: equal EMAs).
            Tensor? noisyBranchPatches = null, cleanBranchPatches = null;
            if (batched && noisyActive && ReferenceEquals(noisyBranch, cleanBranch) && o.BranchScope == BranchScope.Decoder)
            {
                var both = cleanBranch!.Decode(encodedBoth!, cBoth!, maskBoth!);
                noisyBranchPatches = both[..n];
                cleanBranchPatches = both[n..];
            }
            if (noisyActive)
            {
                // No clean information: visible noisy tokens through the encoder, [MASK] elsewhere, frozen decoder copy.
                noisyBranchPatches ??= noisyBranch!.Decode(
                    o.BranchScope == BranchScope.Decoder && encodedKept is not null
                        ? encodedKept // the same encoder pass: its gradient through the frozen copy trains the encoder
                        : noisyBranch.Encode(model, NoisyVisibleTokens(), c),
                    c, mask);
                var dn = Denoised(noisyBranchPatches, xNoisy, sigma);
                noisyTerm = _noisyBranchWeight * MeanOver(Patches.PatchMean(weight * dn.Minus(x0).square(), p), visible);
            }
            if (cleanActive)
            {
                // Clean visible tokens at σ → σ_min, [MASK] elsewhere: reconstruct the clean masked patches.
                if (cleanBranchPatches is null)
                {
                    Tensor kept;
                    if (batched) kept = encodedBoth![n..];
                    else
                    {
                        cleanSigma = full(cleanRows, o.CleanSigma, dtype: ScalarType.Float32, device: x0.device);
                        cClean = model.Condition(_edm.CNoise(cleanSigma).to_type(computeType), labelsClean);
                        var cleanIn = model.Embed((_edm.CIn(cleanSigma.reshape(-1, 1, 1, 1)) * x0Clean).to_type(computeType));
                        kept = cleanBranch!.Encode(model, cleanMask.GatherKept(cleanIn), cClean);
                    }
                    cleanBranchPatches = cleanBranch!.Decode(kept, cClean!, cleanMask);
                }
                // The raw output F, not D: D's skip term would hand the masked clean pixels to the loss.
                var raw = model.Unpatchify(cleanBranchPatches).to_type(ScalarType.Float32)[.., ..channels];
                cleanTerm = _cleanBranchWeight * NormalizedPatchError(raw, x0Clean, cleanMask.Mask, p);
                if (partClean) // rows without the clean branch add 0; the rest are scaled so the batch mean is unbiased
                {
                    using var scale = ((double)n / cleanRows).ToScalar();
                    cleanTerm = cat(new[] { cleanTerm.mul(scale), zeros(n - cleanRows, device: x0.device) }, 0);
                }
            }
        }

        var total = perSample.Plus(maskedTerm).Plus(noisyTerm).Plus(cleanTerm);
        // One host synchronisation for the five figures.
        using var means = stack(new[] { total.mean(), perSample.mean(), maskedTerm.mean(), noisyTerm.mean(), cleanTerm.mean() })
            .to_type(ScalarType.Float32).cpu();
        var values = means.data<float>().ToArray();
        var breakdown = new LossBreakdown
        {
            Total = values[0], Denoising = values[1], Masked = values[2], NoisyBranch = values[3], CleanBranch = values[4],
        };
        return (total.MoveToOuterDisposeScope(), breakdown);
    }

    /// <summary>The number of rows of a batch of <paramref name="batchRows"/> that pass the clean branch: ⌈f·N⌉, at least 1.</summary>
    public int CleanRows(int batchRows) =>
        // − 1e-9: f·N is not exact in binary (0.3 · 10 = 3.0000000000000004), and ⌈·⌉ must not round it up to 4.
        Math.Clamp((int)Math.Ceiling(Options.CleanBranchFraction * batchRows - 1e-9), 1, Math.Max(batchRows, 1));

    static readonly Scalar VarianceEpsilon = 1e-6.ToScalar();

    /// <summary>
    /// MAE's normalised-pixel loss: per patch, the target is standardised (mean 0, variance 1 with ε = 1e-6,
    /// unbiased variance as torch.var); squared error averaged per patch, then over the patches where mask = 1.
    /// </summary>
    public static Tensor NormalizedPatchError(Tensor prediction, Tensor target, Tensor mask, int patchSize)
    {
        using var scope = NewDisposeScope();
        var t = Patches.Patchify(target, patchSize);
        var pr = Patches.Patchify(prediction, patchSize);
        var mean = t.mean(new long[] { -1 }, keepdim: true);
        var variance = t.var(-1, keepdim: true);
        t = t.Minus(mean) / variance.add(VarianceEpsilon, HeldScalars.One).sqrt(); // long-lived Scalars (see HeldScalars)
        var perPatch = pr.Minus(t).square().mean(new long[] { -1 });
        return ((perPatch * mask).sum(1) / mask.sum(1)).MoveToOuterDisposeScope();
    }
}
