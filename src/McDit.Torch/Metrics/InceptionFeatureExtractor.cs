using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>Which Inception-v3 features an <see cref="InceptionFeatureExtractor"/> returns.</summary>
public enum InceptionFeatureKind
{
    /// <summary>pool_3, 2048-d: FID and precision/recall.</summary>
    Pool,

    /// <summary>mixed_6/conv, first 7 channels, 2023-d: sFID.</summary>
    Spatial,
}

/// <summary>Inception-v3 pool_3 (FID) or mixed_6/conv (sFID) features as an <see cref="IFeatureExtractor"/>.</summary>
public sealed class InceptionFeatureExtractor : IFeatureExtractor
{
    readonly bool _ownsNetwork;

    /// <summary>Wraps a loaded network.</summary>
    /// <param name="network">The network, for example from <see cref="InceptionV3.FromFile"/>.</param>
    /// <param name="kind">Which features to return.</param>
    /// <param name="ownsNetwork">Whether disposing this extractor disposes the network.</param>
    public InceptionFeatureExtractor(InceptionV3 network, InceptionFeatureKind kind = InceptionFeatureKind.Pool, bool ownsNetwork = false)
    {
        Network = network ?? throw new ArgumentNullException(nameof(network));
        Kind = kind;
        _ownsNetwork = ownsNetwork;
    }

    /// <summary>Loads the FID weights from <paramref name="weightsPath"/> (see <see cref="InceptionV3.FromFile"/>).</summary>
    public static InceptionFeatureExtractor FromFile(string weightsPath, InceptionFeatureKind kind = InceptionFeatureKind.Pool,
        Device? device = null) => new(InceptionV3.FromFile(weightsPath, device), kind, ownsNetwork: true);

    /// <summary>The network.</summary>
    public InceptionV3 Network { get; }

    /// <summary>Which features are returned.</summary>
    public InceptionFeatureKind Kind { get; }

    /// <inheritdoc/>
    public string Id => Kind == InceptionFeatureKind.Pool ? "inception-v3-fid/pool_3" : "inception-v3-fid/mixed_6-conv-7";

    /// <inheritdoc/>
    public int Dimension => Kind == InceptionFeatureKind.Pool ? InceptionV3.PoolDimension : InceptionV3.SpatialDimension;

    /// <inheritdoc/>
    public Tensor Extract(Tensor images)
    {
        using var output = Network.Features(images);
        var features = Kind == InceptionFeatureKind.Pool ? output.Pool : output.Spatial;
        return features.to(float64, CPU).clone();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsNetwork) Network.Dispose();
    }
}
