using McDit.MLNet.Latents;
using McDit.MLNet.Transforms;
using McDit.Torch.Vae;

namespace Microsoft.ML;

public sealed partial class McDitTransformsCatalog
{
    /// <summary>
    /// Encodes images into the space the diffusion transformer is trained in. With no VAE the latent space is pixel
    /// space: the output column is a copy of the input (as for Fashion-MNIST). With a VAE (a diffusers folder with
    /// <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>, or a single <c>.safetensors</c> file, such as
    /// stabilityai/sd-vae-ft-mse) each image, a float vector [3, H, W] with values in [0, 1], becomes the scaled latent
    /// [4, H/8, W/8] (posterior mean × 0.18215 by default); the VAE's weights are saved inside the model zip.
    /// </summary>
    /// <param name="outputColumnName">The latent column.</param>
    /// <param name="inputColumnName">The image column (a known-size CHW float vector); null means <paramref name="outputColumnName"/>.</param>
    /// <param name="vaePath">The VAE folder or weights file; null for pixel space (the identity).</param>
    /// <param name="sampleLatent">Output a sample of the posterior (row i seeded by (<paramref name="seed"/>, i)) instead of its mean.</param>
    /// <param name="seed">Seed of the sampled latents.</param>
    /// <param name="outputMoments">Also add <c>&lt;output&gt;Mean</c> and <c>&lt;output&gt;LogVar</c>, the unscaled posterior.</param>
    /// <param name="inputMinimum">Input value of black (mapped to −1).</param>
    /// <param name="inputMaximum">Input value of white (mapped to +1).</param>
    /// <example><code>
    /// var pipeline = mlContext.Transforms.ExtractPixels("Pixels", "Image", interleavePixelColors: false, scaleImage: 1f / 255)
    ///     .Append(mlContext.McDit().Transforms.EncodeLatents("Latent", "Pixels", vaePath: "sd-vae-ft-mse"))
    ///     .Append(mlContext.McDit().Trainers.DiffusionTransformer(new McDitTrainer.Options
    ///         { ImageColumnName = "Latent", LabelColumnName = "Label", LatentDecoderPath = "sd-vae-ft-mse" }));
    /// </code></example>
    /// <exception cref="FileNotFoundException">The VAE folder, file or config is missing.</exception>
    public LatentEncodingEstimator EncodeLatents(string outputColumnName = "Latent", string? inputColumnName = null, string? vaePath = null,
        bool sampleLatent = false, int seed = 0, bool outputMoments = false, float inputMinimum = 0f, float inputMaximum = 1f)
    {
        var vae = vaePath is null ? null : VaeRuntime.Load(vaePath);
        return new LatentEncodingEstimator(_env, outputColumnName, inputColumnName ?? outputColumnName, vae, inputMinimum, inputMaximum,
            sampleLatent, seed, outputMoments);
    }

    /// <summary>
    /// Encodes images into the latent space of <paramref name="vae"/> (see
    /// <see cref="EncodeLatents(string, string?, string?, bool, int, bool, float, float)"/>). The VAE is shared, not copied:
    /// keep it alive while the pipeline is used.
    /// </summary>
    /// <param name="outputColumnName">The latent column.</param>
    /// <param name="inputColumnName">The image column; null means <paramref name="outputColumnName"/>.</param>
    /// <param name="vae">The autoencoder (put in eval mode).</param>
    /// <param name="sampleLatent">Output a sample of the posterior instead of its mean.</param>
    /// <param name="seed">Seed of the sampled latents.</param>
    /// <param name="outputMoments">Also add <c>&lt;output&gt;Mean</c> and <c>&lt;output&gt;LogVar</c>.</param>
    /// <param name="inputMinimum">Input value of black (mapped to −1).</param>
    /// <param name="inputMaximum">Input value of white (mapped to +1).</param>
    public LatentEncodingEstimator EncodeLatents(string outputColumnName, string? inputColumnName, AutoencoderKL vae,
        bool sampleLatent = false, int seed = 0, bool outputMoments = false, float inputMinimum = 0f, float inputMaximum = 1f)
    {
        ArgumentNullException.ThrowIfNull(vae);
        return new LatentEncodingEstimator(_env, outputColumnName, inputColumnName ?? outputColumnName, vae, inputMinimum, inputMaximum,
            sampleLatent, seed, outputMoments);
    }
}
