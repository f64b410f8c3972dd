using McDit.Torch.Metrics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Evaluation;

/// <summary>Feature statistics of an image column of an <see cref="IDataView"/>, with any <see cref="IFeatureExtractor"/>.</summary>
internal static class ImageSetFeaturizer
{
    /// <summary>
    /// Statistics of <paramref name="column"/>: an image column (<see cref="ImageDataViewType"/>; ResNet-18 only) or a
    /// known-size float vector column of C·H·W values in [0, 1] with dimensions [C, H, W] or [H, W] (C = 1).
    /// </summary>
    public static GaussianStatistics Statistics(IDataView data, string column, IFeatureExtractor extractor,
        int batchSize, IProgress<FeaturizationProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var col = data.Schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException(nameof(column),
                $"Column '{column}' is not in the data; it has [{string.Join(", ", data.Schema.Select(c => c.Name))}].");
        long? total = data.GetRowCount();
        using var acc = new GaussianStatisticsAccumulator(extractor.Dimension, extractor.Id);
        if (col.Type is ImageDataViewType)
        {
            if (extractor is not ResNet18FeatureExtractor resnet)
                throw new ArgumentException(
                    $"Column '{column}' holds images; only the ResNet-18 extractor reads image columns directly. For " +
                    $"'{extractor.Id}', give a float vector column [C, H, W] in [0, 1] (ExtractPixels with scaleImage 1/255).",
                    nameof(column));
            foreach (var rows in resnet.FeatureBatches(data, column, batchSize, progress, total))
            {
                using var features = ResNet18FeatureExtractor.ToTensor(rows);
                acc.Add(features);
            }
        }
        else
        {
            var shape = ImageShape(col, column);
            foreach (var batch in TensorBatches(data, col, shape, batchSize))
            {
                using (batch)
                using (var features = extractor.Extract(batch))
                    acc.Add(features);
                progress?.Report(new FeaturizationProgress(acc.Count, total));
            }
        }
        return acc.ToStatistics();
    }

    static long[] ImageShape(DataViewSchema.Column col, string name)
    {
        if (col.Type is VectorDataViewType { ItemType: NumberDataViewType n } v && n.RawType == typeof(float) && v.IsKnownSize)
        {
            var dims = v.Dimensions;
            if (dims.Length == 3 && (dims[0] == 1 || dims[0] == 3)) return new long[] { dims[0], dims[1], dims[2] };
            if (dims.Length == 2) return new long[] { 1, dims[0], dims[1] };
        }
        throw new ArgumentException(
            $"Column '{name}' has type {col.Type}; expected an image column or a known-size Single vector with dimensions " +
            "[C, H, W] (C = 1 or 3) or [H, W], values in [0, 1].", nameof(name));
    }

    static IEnumerable<Tensor> TensorBatches(IDataView data, DataViewSchema.Column col, long[] chw, int batchSize)
    {
        int size = (int)(chw[0] * chw[1] * chw[2]);
        using var cursor = data.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        var buffer = default(VBuffer<float>);
        var values = new float[batchSize * size];
        int rows = 0;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            buffer.CopyTo(values, rows * size);
            // ML.NET pixel columns hold [0, 1] (ExtractPixels with scale 1/255, McDit's loaders and generator); features want [-1, 1].
            for (int i = rows * size; i < (rows + 1) * size; i++) values[i] = values[i] * 2f - 1f;
            if (++rows == batchSize)
            {
                yield return tensor(values, new long[] { rows, chw[0], chw[1], chw[2] });
                rows = 0;
            }
        }
        if (rows > 0)
            yield return tensor(values.AsSpan(0, rows * size).ToArray(), new long[] { rows, chw[0], chw[1], chw[2] });
    }
}
