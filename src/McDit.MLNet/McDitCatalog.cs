using McDit.MLNet.Transforms;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>Entry point to McDit's ML.NET components: <c>mlContext.McDit()</c>.</summary>
public static class McDitMLContextExtensions
{
    /// <summary>McDit's catalog of estimators for this context (masked diffusion transformers).</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public static McDitCatalog McDit(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new McDitCatalog(mlContext);
    }
}

/// <summary>McDit's components, grouped as ML.NET groups its own (<see cref="Transforms"/>, ...).</summary>
public sealed partial class McDitCatalog
{
    internal McDitCatalog(IHostEnvironment env)
    {
        Environment = env;
        Transforms = new McDitTransformsCatalog(env);
    }

    internal IHostEnvironment Environment { get; }

    /// <summary>Data transforms: patch masking.</summary>
    public McDitTransformsCatalog Transforms { get; }
}

/// <summary>McDit's data transforms: <c>mlContext.McDit().Transforms</c>.</summary>
public sealed partial class McDitTransformsCatalog
{
    readonly IHostEnvironment _env;

    internal McDitTransformsCatalog(IHostEnvironment env) => _env = env;

    /// <summary>
    /// Masks random square patches of an image or latent column, with a different mask per row that is
    /// reproducible per seed: the masking the MaskDiT / MC-DiT training step uses, for inspection or as a feature.
    /// </summary>
    /// <param name="outputColumnName">Base name of the two output columns: <c>&lt;name&gt;Mask</c>, a float vector of
    /// L = (H/p)·(W/p) values (1 = masked), and <c>&lt;name&gt;Masked</c>, the input with masked patches set to
    /// <paramref name="fillValue"/>.</param>
    /// <param name="inputColumnName">The input column, a known-size float vector of C·H·W values in CHW order;
    /// null means <paramref name="outputColumnName"/>.</param>
    /// <param name="channels">Channels C; 0 (with height and width 0) takes C, H, W from the column's
    /// dimensions ([C, H, W], or [H, W] with C = 1).</param>
    /// <param name="height">Height H, a multiple of <paramref name="patchSize"/>.</param>
    /// <param name="width">Width W, a multiple of <paramref name="patchSize"/>.</param>
    /// <param name="patchSize">Side p of a square patch (DiT's patch size).</param>
    /// <param name="maskRatio">Fraction of patches masked, in [0, 1); (1 − r)·L patches are kept (at least one).</param>
    /// <param name="seed">Seed of the masks: row i's mask depends on (seed, i) only.</param>
    /// <param name="fillValue">Value of masked pixels in the masked-image column.</param>
    /// <example><code>
    /// var pipeline = mlContext.McDit().Transforms.MaskPatches("Patches", "Image", channels: 1, height: 28, width: 28,
    ///     patchSize: 4, maskRatio: 0.5);
    /// // adds "PatchesMask" (49 floats) and "PatchesMasked" (784 floats)
    /// </code></example>
    public PatchMaskingEstimator MaskPatches(string outputColumnName, string? inputColumnName = null,
        int channels = 0, int height = 0, int width = 0, int patchSize = 2, double maskRatio = 0.5, int seed = 0,
        float fillValue = 0f)
        => new(_env, outputColumnName, inputColumnName, channels, height, width, patchSize, maskRatio, seed, fillValue);
}
