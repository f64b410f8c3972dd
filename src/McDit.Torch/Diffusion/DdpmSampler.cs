using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// A DDPM network as DiT's sampler calls it: x_t [N, C, H, W], the training timesteps t [N] (float32 whole numbers) and
/// labels [N] (or null) → [N, C, …] (ε) or [N, 2C, …] (ε and the variance interpolation v of learned sigma).
/// </summary>
public delegate Tensor DdpmNetwork(Tensor x, Tensor timesteps, Tensor? labels);

/// <summary>
/// DiT's sampler: ancestral DDPM sampling (<c>p_sample_loop</c>) on a respaced schedule (<see cref="DdpmSchedule"/>; DiT uses
/// 250 of 1000 steps), with the learned variance of iDDPM (<c>LEARNED_RANGE</c>: log σ² = v'·log β + (1 − v')·log β̃,
/// v' = (v + 1)/2) or, for a network without it, DiT's <c>FIXED_LARGE</c> variance, x₀ not clipped, and DiT's
/// classifier-free guidance (<c>forward_with_cfg</c>).
/// </summary>
public static class DdpmSampler
{
    /// <summary>
    /// One network call with DiT's classifier-free guidance: the network runs on [x; x] with labels [y; null], and
    /// ε = ε_u + s·(ε_c − ε_u) on the first <paramref name="guidedChannels"/> channels (DiT guides 3 of its 4 latent
    /// channels); the other channels, and the variance, are the conditional half's.
    /// </summary>
    /// <returns>The guided output for the N conditional rows, shaped like the network's output for x.</returns>
    public static Tensor GuidedOutput(DdpmNetwork network, Tensor x, Tensor timesteps, Tensor labels, double scale, int nullLabel, int guidedChannels)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        var both = network(torch.cat(new[] { x, x }, 0), torch.cat(new[] { timesteps, timesteps }, 0),
            torch.cat(new[] { labels, torch.full_like(labels, nullLabel) }, 0));
        var cond = both[..(int)n];
        var uncond = both[(int)n..];
        int g = (int)Math.Min(guidedChannels, cond.shape[1]);
        var guided = uncond[.., ..g] + (cond[.., ..g] - uncond[.., ..g]) * scale;
        return torch.cat(new[] { guided, cond[.., g..] }, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the sampler from x_T = <paramref name="latents"/> (standard normal noise) to x₀.</summary>
    /// <param name="network">The DDPM network, called under no_grad with float32 inputs.</param>
    /// <param name="latents">x_T, [N, C, H, W].</param>
    /// <param name="labels">int64 class labels [N], or null.</param>
    /// <param name="schedule">The (respaced) schedule.</param>
    /// <param name="noise">Draws the fresh standard normal noise of one step, shaped like its argument (per-row generators
    /// keep each row's sample independent of its batch).</param>
    /// <param name="guidanceScale">Classifier-free guidance scale (1: none).</param>
    /// <param name="nullLabel">The null label, required with guidance.</param>
    /// <param name="guidedChannels">Channels guided (DiT: 3); see <see cref="GuidedOutput"/>.</param>
    /// <param name="progress">Told the number of finished steps.</param>
    /// <returns>x₀, float32, on the device of <paramref name="latents"/>.</returns>
    public static Tensor Sample(DdpmNetwork network, Tensor latents, Tensor? labels, DdpmSchedule schedule, Func<Tensor, Tensor> noise,
        double guidanceScale = 1, int? nullLabel = null, int guidedChannels = 3, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(noise);
        if (!double.IsFinite(guidanceScale)) throw new ArgumentOutOfRangeException(nameof(guidanceScale), guidanceScale, "The guidance scale must be finite (1 = none).");
        bool guided = guidanceScale != 1;
        if (guided && (labels is null || nullLabel is null or < 0))
            throw new ArgumentException($"Guidance scale {guidanceScale} needs labels and the model's null label; this model has none. Use guidance 1.", nameof(guidanceScale));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long n = latents.shape[0];
        int channels = (int)latents.shape[1];
        var x = latents.to_type(ScalarType.Float32);
        var device = latents.device;
        int steps = schedule.Timesteps.Length;
        for (int i = steps - 1; i >= 0; i--)
        {
            using var step = NewDisposeScope();
            var t = torch.full(new[] { n }, (float)schedule.Timesteps[i], dtype: ScalarType.Float32, device: device);
            var output = guided ? GuidedOutput(network, x, t, labels!, guidanceScale, nullLabel!.Value, guidedChannels) : network(x, t, labels);
            if (output.shape[0] != n || (output.shape[1] != channels && output.shape[1] != 2 * channels))
                throw new InvalidOperationException($"The DDPM network returned shape [{string.Join(", ", output.shape)}]; expected [{n}, {channels} or {2 * channels}, …].");
            output = output.to_type(ScalarType.Float32);
            var eps = output[.., ..channels];
            double sqrtRecip = Math.Sqrt(1 / schedule.AlphasCumprod[i]), sqrtRecipM1 = Math.Sqrt(1 / schedule.AlphasCumprod[i] - 1);
            var x0 = x * (float)sqrtRecip - eps * (float)sqrtRecipM1;
            var mean = x0 * (float)schedule.PosteriorMeanCoef1[i] + x * (float)schedule.PosteriorMeanCoef2[i];
            Tensor next;
            if (i == 0) next = mean;
            else
            {
                Tensor logVariance;
                if (output.shape[1] == 2 * channels)
                {
                    // LEARNED_RANGE: interpolate between log β̃ (min) and log β (max).
                    var frac = (output[.., channels..] + 1) / 2;
                    double minLog = schedule.PosteriorLogVarianceClipped[i], maxLog = Math.Log(schedule.Betas[i]);
                    logVariance = frac * (float)maxLog + (1 - frac) * (float)minLog;
                }
                else
                {
                    // FIXED_LARGE: β, with the first entry replaced by the posterior variance of step 1.
                    double v = i == 0 ? schedule.PosteriorVariance[Math.Min(1, steps - 1)] : schedule.Betas[i];
                    logVariance = torch.full_like(mean, (float)Math.Log(v));
                }
                next = mean + (logVariance * 0.5f).exp() * noise(mean);
            }
            x = next.MoveToOuterDisposeScope();
            progress?.Report(steps - i);
        }
        return x.MoveToOuterDisposeScope();
    }
}
