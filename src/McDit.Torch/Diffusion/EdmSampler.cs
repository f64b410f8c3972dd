using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// The deterministic EDM sampler (Karras et al. 2022, Algorithm 2 without churn), numerically as MaskDiT's
/// <c>edm_sampler</c>: the state x is kept in float64, the denoiser is called with x cast to float32 and σ as float32.
/// </summary>
public static class EdmSampler
{
    /// <summary>Integrates the probability-flow ODE from σ_max to 0, turning noise into samples.</summary>
    /// <param name="denoiser">D(x; σ, y). Called under <c>torch.inference_mode()</c>; it keeps ownership of nothing it is given.</param>
    /// <param name="latents">Standard normal noise, [N, ...] of any floating dtype; x_0 = latents·σ_0 in float64.</param>
    /// <param name="labels">Class labels, integer [N] (cast to int64), or null for unconditional sampling.</param>
    /// <param name="options">Steps, solver, schedule and guidance; see <see cref="SamplerOptions"/>.</param>
    /// <param name="progress">Told the number of finished steps (1 … N) after each step.</param>
    /// <returns>The samples, float32, shaped like <paramref name="latents"/> and on its device.</returns>
    /// <remarks>
    /// With guidance (<see cref="SamplerOptions.GuidanceScale"/> ≠ 1) every evaluation inside the guidance interval
    /// (<see cref="SamplerOptions.GuidanceSigmaMin"/>, <see cref="SamplerOptions.GuidanceSigmaMax"/>] calls the denoiser once
    /// on the doubled batch [x; x] with labels [y; null] and σ [σ; σ], then D = D_u + s·(D_c − D_u); outside it, once on
    /// [x] with labels [y]. Heun calls the denoiser
    /// 2N − 1 times, Euler N times. MaskDiT mixes the raw network outputs F instead; since both halves share x and σ,
    /// c_skip·x + c_out·(F_u + s·(F_c − F_u)) is the same D, up to float32 rounding.
    /// </remarks>
    /// <exception cref="ArgumentException">When the inputs or options do not fit together (the message says how).</exception>
    /// <exception cref="InvalidOperationException">When the denoiser returns null or a tensor not shaped like its input.</exception>
    public static Tensor Sample(Denoiser denoiser, Tensor latents, Tensor? labels, SamplerOptions options, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Solver == SamplerSolver.Ddpm)
            throw new ArgumentException("SamplerOptions.Solver = Ddpm is DiT's DDPM sampler, not an EDM solver: use DdpmSampler (ModelSampler picks it), or Heun / Euler here.", nameof(options));
        if (latents.dim() < 1 || latents.shape[0] < 1)
            throw new ArgumentException(
                $"latents must be [N, ...] with N ≥ 1; got shape [{string.Join(", ", latents.shape)}].", nameof(latents));
        if (!latents.is_floating_point())
            throw new ArgumentException($"latents must be floating-point noise; got dtype {latents.dtype}.", nameof(latents));
        long n = latents.shape[0];
        if (labels is not null)
        {
            if (labels.dim() != 1 || labels.shape[0] != n)
                throw new ArgumentException(
                    $"labels must be [N] with N = {n} (one per latent); got shape [{string.Join(", ", labels.shape)}].", nameof(labels));
            if (labels.is_floating_point() || labels.is_complex() || labels.dtype == ScalarType.Bool)
                throw new ArgumentException($"labels must be integer class indices (int64); got dtype {labels.dtype}.", nameof(labels));
        }
        if (options.UsesGuidance && labels is null)
            throw new ArgumentException(
                $"SamplerOptions.GuidanceScale = {options.GuidanceScale} asks for classifier-free guidance, which needs labels; " +
                "pass labels, or set GuidanceScale to 1 for unconditional sampling.", nameof(labels));

        double[] t = KarrasSchedule.Sigmas(options.Steps, options.SigmaMin, options.SigmaMax, options.Rho);
        bool heun = options.Solver == SamplerSolver.Heun;
        var device = latents.device;

        using var scope = NewDisposeScope();
        // Inference mode (no autograd bookkeeping at all, not only no gradients); the result is made outside it below, so
        // callers get an ordinary tensor they may modify in place. Nothing in the loop reads a value back to the host.
        Tensor xNext;
        using (torch.inference_mode())
        {
            Tensor? y = null;
            if (labels is not null)
            {
                y = labels.to(ScalarType.Int64, device);
                if (options.UsesGuidance)
                    y = torch.cat(new[] { y, torch.full(new long[] { n }, options.NullLabel!.Value, dtype: ScalarType.Int64, device: device) }, 0);
            }

            using var guidance = options.GuidanceScale.ToScalar();
            int evaluation = 0;
            Tensor Evaluate(Tensor x, double sigma)
            {
                using var evalScope = NewDisposeScope();
                var x32 = x.to(ScalarType.Float32);
                // Every other evaluation sees the image rolled by the shift (and its output rolled back), so a patch
                // model's borders fall in different places from one evaluation to the next.
                int shift = options.AlternatingShift > 0 && sigma <= options.AlternatingShiftSigmaMax && evaluation++ % 2 == 1
                    ? options.AlternatingShift : 0;
                x32 = ImageShift.Roll(x32, shift);
                Tensor d;
                if (options.GuidesAt(sigma))
                {
                    var both = torch.cat(new[] { x32, x32 }, 0);
                    var s = torch.full(new long[] { 2 * n }, (float)sigma, dtype: ScalarType.Float32, device: device);
                    var out2 = Call(denoiser, both, s, y);
                    var dc = out2[..(int)n];
                    var du = out2[(int)n..];
                    d = du.Plus(dc.Minus(du) * guidance);
                }
                else
                {
                    var s = torch.full(new long[] { n }, (float)sigma, dtype: ScalarType.Float32, device: device);
                    // Outside the guidance interval only the conditional half of the labels is used.
                    d = Call(denoiser, x32, s, y is not null && options.UsesGuidance ? y[..(int)n] : y);
                }
                d = ImageShift.Roll(d, -shift);
                return d.to(ScalarType.Float64).MoveToOuterDisposeScope();
            }

            // x_0 = latents·σ_0 in float64; every x below stays in this method's scope until it is replaced.
            // Every Scalar held in a using, not converted implicitly: an implicit TorchSharp Scalar is unreachable once its
            // handle is read, so the finalizer thread could free it during the native call.
            using (var sigma0 = t[0].ToScalar()) xNext = latents.to(ScalarType.Float64) * sigma0;
            for (int i = 0; i < options.Steps; i++)
            {
                double tCur = t[i], tNext = t[i + 1];
                var xCur = xNext;
                using (var step = NewDisposeScope())
                {
                    // Euler step.
                    using var sigmaCur = tCur.ToScalar();
                    using var stepSize = (tNext - tCur).ToScalar();
                    var denoised = Evaluate(xCur, tCur);
                    var dCur = xCur.Minus(denoised) / sigmaCur;
                    var x = xCur.Plus(dCur * stepSize);

                    // 2nd-order correction, except on the last step (σ_next = 0).
                    if (heun && i < options.Steps - 1)
                    {
                        var denoised2 = Evaluate(x, tNext);
                        using var sigmaNext = tNext.ToScalar();
                        var dPrime = x.Minus(denoised2) / sigmaNext;
                        x = xCur.Plus((dCur * Half).Plus(dPrime * Half) * stepSize);
                    }
                    xNext = x.MoveToOuterDisposeScope();
                }
                xCur.Dispose();
                progress?.Report(i + 1);
            }
        }
        return xNext.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    static readonly Scalar Half = 0.5.ToScalar();

    static Tensor Call(Denoiser denoiser, Tensor x, Tensor sigma, Tensor? labels)
    {
        var d = denoiser(x, sigma, labels)
            ?? throw new InvalidOperationException("The denoiser returned null; it must return D(x; σ) shaped like x.");
        if (!d.shape.SequenceEqual(x.shape))
            throw new InvalidOperationException(
                $"The denoiser returned shape [{string.Join(", ", d.shape)}] for input shape [{string.Join(", ", x.shape)}]; " +
                "it must return D(x; σ) shaped like x.");
        return d;
    }
}
