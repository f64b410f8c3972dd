using System.Globalization;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>
/// A Gaussian fitted to a set of feature vectors: mean μ [D], unbiased covariance Σ [D, D] (divided by N − 1, as
/// <c>numpy.cov</c>), both float64 on the CPU, the number of vectors N and, optionally, the id of the feature
/// extractor that produced them. Owns its tensors.
/// </summary>
public sealed class GaussianStatistics : IDisposable
{
    /// <summary>Metadata key of the extractor id in a statistics file.</summary>
    public const string ExtractorIdKey = "extractor_id";

    /// <summary>Metadata key of the feature count in a statistics file.</summary>
    public const string CountKey = "count";

    /// <summary>Metadata key of the file format in a statistics file.</summary>
    public const string FormatKey = "format";

    /// <summary>The format tag written into statistics files.</summary>
    public const string FormatValue = "mcdit-gaussian-statistics/1";

    /// <summary>Creates statistics from a mean and covariance (copied to float64 CPU tensors).</summary>
    /// <param name="mean">μ, shape [D].</param>
    /// <param name="covariance">Σ, shape [D, D].</param>
    /// <param name="count">The number of feature vectors N they were computed from.</param>
    /// <param name="extractorId">The feature extractor's <see cref="IFeatureExtractor.Id"/>, or null when unknown.</param>
    public GaussianStatistics(Tensor mean, Tensor covariance, long count, string? extractorId = null)
    {
        TorchBackend.EnsureInitialized();
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(covariance);
        if (mean.ndim != 1)
            throw new ArgumentException($"mean has shape [{string.Join(", ", mean.shape)}]; expected [D].", nameof(mean));
        long d = mean.shape[0];
        if (!covariance.shape.SequenceEqual(new[] { d, d }))
            throw new ArgumentException(
                $"covariance has shape [{string.Join(", ", covariance.shape)}]; expected [{d}, {d}].", nameof(covariance));
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Mean = mean.detach().to(float64, CPU).clone();
        Covariance = covariance.detach().to(float64, CPU).clone();
        Count = count;
        ExtractorId = extractorId;
    }

    /// <summary>μ, float64 [D].</summary>
    public Tensor Mean { get; }

    /// <summary>Σ, float64 [D, D] (unbiased).</summary>
    public Tensor Covariance { get; }

    /// <summary>Number of feature vectors N.</summary>
    public long Count { get; }

    /// <summary>The feature extractor's id, or null when unknown.</summary>
    public string? ExtractorId { get; }

    /// <summary>Feature dimension D.</summary>
    public int Dimension => (int)Mean.shape[0];

    /// <summary>Fits a Gaussian to the rows of <paramref name="features"/> [N, D] (N ≥ 2), in float64.</summary>
    /// <param name="features">Feature vectors, one per row, any floating dtype and device.</param>
    /// <param name="extractorId">The id of the extractor that made them, or null.</param>
    public static GaussianStatistics FromFeatures(Tensor features, string? extractorId = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.ndim != 2)
            throw new ArgumentException($"features has shape [{string.Join(", ", features.shape)}]; expected [N, D].", nameof(features));
        using var acc = new GaussianStatisticsAccumulator((int)features.shape[1], extractorId);
        acc.Add(features);
        return acc.ToStatistics();
    }

    /// <summary>
    /// Saves the statistics as safetensors (<c>mu</c> [D] and <c>sigma</c> [D, D], float64) with metadata
    /// {format, extractor_id, count}, atomically.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    public void Save(string path)
    {
        var metadata = new Dictionary<string, string>
        {
            [FormatKey] = FormatValue,
            [CountKey] = Count.ToString(CultureInfo.InvariantCulture),
            [ExtractorIdKey] = ExtractorId ?? "",
        };
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["mu"] = Mean, ["sigma"] = Covariance }, metadata);
    }

    /// <summary>Loads statistics saved by <see cref="Save"/>.</summary>
    /// <param name="path">The statistics file.</param>
    /// <param name="expectedExtractorId">When not null, the file must have been made with this extractor id.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a statistics file, or was made with another extractor.</exception>
    public static GaussianStatistics Load(string path, string? expectedExtractorId = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Statistics file '{path}' does not exist.", path);
        using var content = SafeTensors.Load(path);
        var meta = content.Metadata;
        if (!meta.TryGetValue(FormatKey, out var format) || format != FormatValue)
            throw new InvalidDataException(
                $"'{path}' is not a McDit statistics file: expected metadata {FormatKey}={FormatValue}.");
        meta.TryGetValue(ExtractorIdKey, out var id);
        id = string.IsNullOrEmpty(id) ? null : id;
        if (expectedExtractorId is not null && id != expectedExtractorId)
            throw new InvalidDataException(
                $"Statistics file '{path}' was made with feature extractor '{id ?? "(unknown)"}', not '{expectedExtractorId}'; " +
                "statistics from different extractors cannot be compared. Delete the file or choose another path to recompute it.");
        if (!meta.TryGetValue(CountKey, out var countText) ||
            !long.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            throw new InvalidDataException($"Statistics file '{path}' lacks a valid '{CountKey}' metadata entry.");
        if (!content.Tensors.TryGetValue("mu", out var mu) || !content.Tensors.TryGetValue("sigma", out var sigma))
            throw new InvalidDataException($"Statistics file '{path}' lacks the tensors 'mu' and 'sigma'.");
        return new GaussianStatistics(mu, sigma, count, id);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Mean.Dispose();
        Covariance.Dispose();
    }
}

/// <summary>
/// Accumulates the mean and covariance of feature vectors batch by batch, in float64, without keeping the features:
/// each batch's own mean and centred scatter matrix are merged into the running ones with Chan et al.'s parallel
/// form of Welford's update, which avoids the cancellation of the Σx·xᵀ − N·μμᵀ formula when |μ| ≫ spread.
/// </summary>
public sealed class GaussianStatisticsAccumulator : IDisposable
{
    readonly Tensor _mean;    // [D] running mean
    readonly Tensor _scatter; // [D, D] Σ (x − μ)(x − μ)ᵀ
    long _count;

    /// <summary>Starts an empty accumulator for <paramref name="dimension"/>-dimensional features.</summary>
    /// <param name="dimension">Feature dimension D.</param>
    /// <param name="extractorId">Id carried into the resulting statistics, or null.</param>
    public GaussianStatisticsAccumulator(int dimension, string? extractorId = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        TorchBackend.EnsureInitialized();
        Dimension = dimension;
        ExtractorId = extractorId;
        _mean = zeros(dimension, dtype: float64);
        _scatter = zeros(dimension, dimension, dtype: float64);
    }

    /// <summary>Feature dimension D.</summary>
    public int Dimension { get; }

    /// <summary>The extractor id carried into the statistics.</summary>
    public string? ExtractorId { get; }

    /// <summary>Number of vectors added so far.</summary>
    public long Count => _count;

    /// <summary>Adds a batch of feature vectors [N, D] (any floating dtype and device; copied to float64 CPU).</summary>
    public void Add(Tensor features)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.ndim != 2 || features.shape[1] != Dimension)
            throw new ArgumentException(
                $"features has shape [{string.Join(", ", features.shape)}]; expected [N, {Dimension}].", nameof(features));
        long n = features.shape[0];
        if (n == 0) return;
        using var scope = NewDisposeScope();
        var x = features.detach().to(float64, CPU);
        var batchMean = x.mean(new long[] { 0 });
        var centred = x - batchMean;
        var batchScatter = centred.t().matmul(centred);
        long total = _count + n;
        var delta = batchMean - _mean;
        _scatter.add_(batchScatter).add_(delta.outer(delta) * ((double)_count * n / total));
        _mean.add_(delta * ((double)n / total));
        _count = total;
    }

    /// <summary>The statistics of everything added (needs at least two vectors for a covariance).</summary>
    /// <exception cref="InvalidOperationException">Fewer than two vectors were added.</exception>
    public GaussianStatistics ToStatistics()
    {
        if (_count < 2)
            throw new InvalidOperationException($"A covariance needs at least 2 feature vectors; {_count} were added.");
        using var cov = _scatter / (double)(_count - 1);
        return new GaussianStatistics(_mean, cov, _count, ExtractorId);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _mean.Dispose();
        _scatter.Dispose();
    }
}
