using Microsoft.ML.Transforms;

namespace Microsoft.ML;

public sealed partial class McDitTransformsCatalog
{
    /// <summary>
    /// Encodes images into the space the diffusion transformer is trained in. For now the latent space is pixel space
    /// (the identity, as for Fashion-MNIST in the method notes): the output column is a copy of the input, a CHW float
    /// vector. Put it in pipelines now so they keep working when an autoencoder (SD-VAE) encoder takes its place.
    /// </summary>
    /// <param name="outputColumnName">The latent column.</param>
    /// <param name="inputColumnName">The image column (a CHW float vector); null means <paramref name="outputColumnName"/>.</param>
    /// <example><code>
    /// var pipeline = mlContext.Transforms.ExtractPixels("Pixels", "Image", scaleImage: 1f / 255)
    ///     .Append(mlContext.McDit().Transforms.EncodeLatents("Latent", "Pixels"))
    ///     .Append(mlContext.McDit().Trainers.DiffusionTransformer("Latent", "Label"));
    /// </code></example>
    public ColumnCopyingEstimator EncodeLatents(string outputColumnName = "Latent", string? inputColumnName = null)
    {
        if (string.IsNullOrWhiteSpace(outputColumnName))
            throw new ArgumentException("The latent column name must not be empty.", nameof(outputColumnName));
        return new ColumnCopyingEstimator(_env, outputColumnName, inputColumnName ?? outputColumnName);
    }
}
