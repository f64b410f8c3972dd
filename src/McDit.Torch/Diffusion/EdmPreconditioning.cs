using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// The EDM preconditioning of Karras et al. (2022) with MaskDiT's settings: the denoiser is
/// D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)), where F is the raw network.
/// </summary>
/// <remarks>
/// Every coefficient method returns a new tensor shaped like (and of the dtype and device of) the σ tensor passed in;
/// the caller owns it.
/// </remarks>
public sealed class EdmPreconditioning
{
    /// <summary>Creates the preconditioning for data of standard deviation <paramref name="sigmaData"/>.</summary>
    /// <param name="sigmaData">Expected standard deviation σ_data of the training data (0.5 in EDM and MaskDiT).</param>
    /// <exception cref="ArgumentOutOfRangeException">When σ_data is not a positive finite number.</exception>
    public EdmPreconditioning(double sigmaData = 0.5)
    {
        if (!(sigmaData > 0) || double.IsInfinity(sigmaData))
            throw new ArgumentOutOfRangeException(nameof(sigmaData), sigmaData,
                "σ_data (sigmaData) must be a positive finite number, for example 0.5.");
        SigmaData = sigmaData;
        _sd = sigmaData.ToScalar();
        _sd2 = (sigmaData * sigmaData).ToScalar();
    }

    // Held for the life of this object rather than converted implicitly at each call: an implicit TorchSharp Scalar is
    // unreachable once its handle is read, so the finalizer thread could free it during the native call.
    private readonly Scalar _sd, _sd2;
    private static readonly Scalar Four = 4.0.ToScalar();

    /// <summary>Expected standard deviation σ_data of the training data.</summary>
    public double SigmaData { get; }

    /// <summary>σ_data as a held Scalar, for callers that scale by it every step (the training loss).</summary>
    internal Scalar SigmaDataScalar => _sd;

    /// <summary>c_skip(σ) = σd² / (σ² + σd²).</summary>
    public Tensor CSkip(Tensor sigma)
    {
        using var scope = NewDisposeScope();
        return sigma.square().Plus(_sd2).reciprocal().mul(_sd2).MoveToOuterDisposeScope();
    }

    /// <summary>c_out(σ) = σ·σd / √(σ² + σd²).</summary>
    public Tensor COut(Tensor sigma)
    {
        using var scope = NewDisposeScope();
        return (sigma * _sd / sigma.square().Plus(_sd2).sqrt()).MoveToOuterDisposeScope();
    }

    /// <summary>c_in(σ) = 1 / √(σ² + σd²).</summary>
    public Tensor CIn(Tensor sigma)
    {
        using var scope = NewDisposeScope();
        return sigma.square().Plus(_sd2).sqrt().reciprocal().MoveToOuterDisposeScope();
    }

    /// <summary>c_noise(σ) = ln(σ) / 4, the noise conditioning fed to the network.</summary>
    public Tensor CNoise(Tensor sigma)
    {
        using var scope = NewDisposeScope();
        return (sigma.log() / Four).MoveToOuterDisposeScope();
    }

    /// <summary>Loss weight λ(σ) = (σ² + σd²) / (σ·σd)², which makes the effective training target unit-variance.</summary>
    public Tensor LossWeight(Tensor sigma)
    {
        using var scope = NewDisposeScope();
        return (sigma.square().Plus(_sd2) / (sigma * _sd).square()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Evaluates the preconditioned denoiser D(x; σ) = c_skip·x + c_out·F(c_in·x, c_noise), with σ broadcast per sample.
    /// </summary>
    /// <param name="x">Noisy input xσ, [N, ...] (for example [N, C, H, W]).</param>
    /// <param name="sigma">Noise level per sample, [N] (or [N, 1, 1, 1]), or a scalar (0-dim or one element) shared by
    /// all samples. It is cast to the dtype of <paramref name="x"/> before the coefficients are computed, as MaskDiT does.</param>
    /// <param name="network">
    /// The raw network F: receives c_in·x (shape and dtype of x) and c_noise as a [N] tensor, returns F shaped like x.
    /// Its inputs are temporaries disposed after the call; its result is disposed by this method.
    /// </param>
    /// <returns>D(x; σ), shaped like x.</returns>
    /// <exception cref="ArgumentException">When σ holds neither one value nor one value per sample, or F is not shaped like x.</exception>
    public Tensor Denoise(Tensor x, Tensor sigma, Func<Tensor, Tensor, Tensor> network)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(sigma);
        ArgumentNullException.ThrowIfNull(network);
        if (x.dim() < 1)
            throw new ArgumentException($"x must have a batch dimension, [N, ...]; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        long n = x.shape[0];
        if (sigma.numel() != 1 && sigma.numel() != n)
            throw new ArgumentException(
                $"sigma must hold one noise level, or one per sample (N = {n}); got shape [{string.Join(", ", sigma.shape)}].",
                nameof(sigma));

        using var scope = NewDisposeScope();
        var perSample = sigma.to(x.dtype, x.device).reshape(-1).expand(n);
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = n;
        var s = perSample.reshape(shape);

        var cSkip = CSkip(s);
        var cOut = COut(s);
        var cIn = CIn(s);
        var cNoise = CNoise(perSample);

        var f = network((cIn * x).to(x.dtype), cNoise);
        if (f is null)
            throw new ArgumentException("The network returned null; it must return F shaped like x.", nameof(network));
        if (!f.shape.SequenceEqual(x.shape))
            throw new ArgumentException(
                $"The network returned F of shape [{string.Join(", ", f.shape)}]; expected the shape of x, [{string.Join(", ", x.shape)}].",
                nameof(network));
        return (cSkip * x).Plus(cOut * f).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Wraps a raw class-conditional network F(c_in·x, c_noise, labels) as a <see cref="Denoiser"/> for the samplers.
    /// </summary>
    /// <param name="network">Receives c_in·x, c_noise [N] and the labels (int64 [N] or null); returns F shaped like x.</param>
    public Denoiser ToDenoiser(Func<Tensor, Tensor, Tensor?, Tensor> network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return (x, sigma, labels) => Denoise(x, sigma, (xIn, cNoise) => network(xIn, cNoise, labels));
    }
}
