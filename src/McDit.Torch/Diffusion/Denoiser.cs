using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// A denoiser D(x; σ, y): the estimate of the clean sample given a noisy one, as the EDM samplers call it.
/// </summary>
/// <param name="x">Noisy samples, float32 [N, ...].</param>
/// <param name="sigma">Noise level per sample, float32 [N].</param>
/// <param name="labels">Class labels, int64 [N] in [0, C] (C is the null label), or null for an unconditional model.</param>
/// <returns>D(x; σ), float32, shaped like <paramref name="x"/>; the caller owns it. The inputs belong to the caller.</returns>
public delegate Tensor Denoiser(Tensor x, Tensor sigma, Tensor? labels);
