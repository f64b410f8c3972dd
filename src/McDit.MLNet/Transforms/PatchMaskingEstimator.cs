using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace McDit.MLNet.Transforms;

/// <summary>
/// Estimator of the <see cref="PatchMaskingTransformer"/>: masks random patches of an image or latent column
/// (a known-size float vector in CHW order). Fitting learns nothing; it checks the input column and fixes the
/// shape (the given channels/height/width, or the column's dimensions).
/// </summary>
/// <remarks>Create it with <c>mlContext.McDit().Transforms.MaskPatches(...)</c>.</remarks>
public sealed class PatchMaskingEstimator : IEstimator<PatchMaskingTransformer>
{
    readonly IHost _host;

    /// <summary>Base name of the output columns (<c>&lt;name&gt;Mask</c> and <c>&lt;name&gt;Masked</c>).</summary>
    public string OutputColumnName { get; }
    /// <summary>Name of the input column.</summary>
    public string InputColumnName { get; }
    /// <summary>Channels C, or 0 to take the shape from the column's dimensions.</summary>
    public int Channels { get; }
    /// <summary>Height H, or 0 to take the shape from the column's dimensions.</summary>
    public int Height { get; }
    /// <summary>Width W, or 0 to take the shape from the column's dimensions.</summary>
    public int Width { get; }
    /// <summary>Side p of a square patch.</summary>
    public int PatchSize { get; }
    /// <summary>Fraction of patch tokens masked, in [0, 1).</summary>
    public double MaskRatio { get; }
    /// <summary>Seed of the per-row masks.</summary>
    public int Seed { get; }
    /// <summary>Value written into masked patches.</summary>
    public float FillValue { get; }

    internal PatchMaskingEstimator(IHostEnvironment env, string outputColumnName, string? inputColumnName,
        int channels, int height, int width, int patchSize, double maskRatio, int seed, float fillValue)
    {
        Contracts.CheckValue(env, nameof(env));
        _host = env.Register(nameof(PatchMaskingEstimator));
        inputColumnName ??= outputColumnName;
        PatchMaskingValidation.CheckOptions(outputColumnName, inputColumnName, channels, height, width, patchSize, maskRatio, shapeRequired: false);
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        Channels = channels;
        Height = height;
        Width = width;
        PatchSize = patchSize;
        MaskRatio = maskRatio;
        Seed = seed;
        FillValue = fillValue;
    }

    /// <summary>Checks the input column of <paramref name="input"/> and returns the transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The column is missing, not a known-size float vector, of the wrong size, or its H/W is not divisible by the patch size.</exception>
    public PatchMaskingTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        var (c, h, w) = PatchMaskingValidation.ResolveShape(input.Schema, InputColumnName, Channels, Height, Width, PatchSize);
        var transformer = new PatchMaskingTransformer(_host, OutputColumnName, InputColumnName, c, h, w, PatchSize, MaskRatio, Seed, FillValue);
        transformer.GetOutputSchema(input.Schema); // checks the size against C·H·W
        return transformer;
    }

    /// <summary>The input schema plus the mask and masked-image columns (float vectors).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or not a float vector.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        PatchMaskingValidation.CheckInputColumn(inputSchema, InputColumnName);
        var columns = inputSchema.ToDictionary(c => c.Name);
        foreach (var suffix in new[] { PatchMaskingTransformer.MaskSuffix, PatchMaskingTransformer.MaskedSuffix })
            columns[OutputColumnName + suffix] = new SchemaShape.Column(OutputColumnName + suffix,
                SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        return new SchemaShape(columns.Values);
    }
}
