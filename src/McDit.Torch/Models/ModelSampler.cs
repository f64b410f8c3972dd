using McDit.Torch.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Models;

/// <summary>Draws samples from a trained model with the EDM samplers, reproducibly per seed.</summary>
public static class ModelSampler
{
    /// <summary>
    /// Generates one sample per entry of <paramref name="labels"/> (class indices, or null entries / a null
    /// array for unconditional samples) in a single sampler run. The starting noise comes from a CPU generator
    /// seeded with <paramref name="seed"/>, so the same seed gives the same images on any device.
    /// </summary>
    /// <returns>float32 [N, C, H, W] on the CPU, in the data's scale (pixels: about [-1, 1]).</returns>
    public static Tensor Generate(MaskedDiffusionTransformer model, IReadOnlyList<int>? labels, int count, long seed,
        SamplerOptions options, double sigmaData = 0.5, IProgress<int>? progress = null)
    {
        var config = model.Config;
        if (labels is not null && labels.Count != count)
            throw new ArgumentException($"{labels.Count} labels were given for {count} samples; give one label per sample.", nameof(labels));
        if (labels is not null && config.NumClasses > 0)
            foreach (var y in labels)
                if (y < 0 || y > config.NumClasses)
                    throw new ArgumentOutOfRangeException(nameof(labels), y, $"Labels must be in [0, {config.NumClasses - 1}] (or {config.NumClasses}, the null label).");
        var device = model.parameters().First().device;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var generator = new Generator((ulong)seed, torch.CPU);
            var latents = randn(new long[] { count, config.InChannels, config.InputSize, config.InputSize }, generator: generator).to(device);
            Tensor? y = labels is null || config.NumClasses == 0 ? null : tensor(labels.Select(l => (long)l).ToArray(), device: device);
            var opts = new SamplerOptions
            {
                Steps = options.Steps, Solver = options.Solver, SigmaMin = options.SigmaMin, SigmaMax = options.SigmaMax, Rho = options.Rho,
                GuidanceScale = y is null ? 1.0 : options.GuidanceScale,
                GuidanceSigmaMin = options.GuidanceSigmaMin, GuidanceSigmaMax = options.GuidanceSigmaMax,
                AlternatingShift = options.AlternatingShift, AlternatingShiftSigmaMax = options.AlternatingShiftSigmaMax, NullLabel = model.NullLabel >= 0 ? model.NullLabel : null,
            };
            var samples = options.Solver == SamplerSolver.Ddpm
                ? DdpmSampler.Sample(ModelDenoiser.CreateDdpm(model), latents, y, new DdpmSchedule(options.Steps),
                    like => randn(like.shape, generator: generator).to(like.device), opts.GuidanceScale, model.NullLabel >= 0 ? model.NullLabel : null,
                    progress: progress)
                : EdmSampler.Sample(ModelDenoiser.Create(model, sigmaData), latents, y, opts, progress);
            return samples.cpu().MoveToOuterDisposeScope();
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }
}
