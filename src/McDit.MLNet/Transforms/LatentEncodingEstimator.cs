using McDit.Torch.Vae;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace McDit.MLNet.Transforms;

/// <summary>
/// The estimator of <see cref="LatentEncodingTransformer"/>: <c>mlContext.McDit().Transforms.EncodeLatents(...)</c>.
/// Nothing is learned; <see cref="Fit"/> checks the input column and returns the transformer.
/// </summary>
public sealed class LatentEncodingEstimator : IEstimator<LatentEncodingTransformer>
{
    readonly IHost _host;
    readonly LatentEncodingTransformer _transformer;

    internal LatentEncodingEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, AutoencoderKL? vae,
        float inputMinimum, float inputMaximum, bool sampleLatent, int seed, bool outputMoments)
    {
        Contracts.CheckValue(env, nameof(env));
        _host = env.Register(nameof(LatentEncodingEstimator));
        _transformer = new LatentEncodingTransformer(env, outputColumnName, inputColumnName, vae, inputMinimum, inputMaximum,
            sampleLatent, seed, outputMoments);
    }

    /// <summary>Checks the image column of <paramref name="input"/> and returns the transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing, not a known-size float vector, or does not fit the VAE.</exception>
    public LatentEncodingTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        _transformer.CheckInput(input.Schema);
        return _transformer;
    }

    /// <summary>The input schema plus the latent column (and the mean / log-variance columns when asked for).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _host.CheckValue(inputSchema, nameof(inputSchema));
        var t = _transformer;
        if (!inputSchema.TryFindColumn(t.InputColumnName, out var image))
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Image column '{t.InputColumnName}' was not found; expected a known-size float vector [C, H, W].");
        if (image.Kind != SchemaShape.Column.VectorKind.Vector || image.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Image column '{t.InputColumnName}' is {image.Kind} of {image.ItemType}; expected a known-size float vector [C, H, W].");
        var columns = inputSchema.ToDictionary(c => c.Name);
        void Add(string name) => columns[name] = new SchemaShape.Column(name, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        Add(t.OutputColumnName);
        if (t.OutputsMoments)
        {
            Add(t.MeanColumnName);
            Add(t.LogVarColumnName);
        }
        return new SchemaShape(columns.Values);
    }
}
