using McDit.MLNet.Internal;
using McDit.MLNet.Trainers;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace McDit.MLNet.Evaluation;

/// <summary>Reads a float image column (and a label column) of an <see cref="IDataView"/> into tensors, for the class-accuracy metric.</summary>
internal static class LabeledImageReader
{
    /// <summary>Images [N, C, H, W] in [-1, 1], labels int64 [N] (0-based), the class count and names of a view.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of an unsupported type, or a label is missing.</exception>
    public static (Tensor Images, Tensor Labels, int Classes, string[]? Names) Read(IDataView data, string imageColumnName, string labelColumnName, string what)
    {
        ArgumentNullException.ThrowIfNull(data);
        var image = data.Schema.GetColumnOrNull(imageColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(imageColumnName),
                $"Image column '{imageColumnName}' is not in the {what} data; it has [{string.Join(", ", data.Schema.Select(c => c.Name))}].");
        var label = data.Schema.GetColumnOrNull(labelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(labelColumnName),
                $"Label column '{labelColumnName}' is not in the {what} data (class accuracy needs each image's class); it has [{string.Join(", ", data.Schema.Select(c => c.Name))}].");
        if (!IndexColumn.IsSupported(label.Type))
            throw new ArgumentOutOfRangeException(nameof(labelColumnName), $"Label column '{labelColumnName}' of the {what} data is {label.Type}; expected {IndexColumn.Expected}.");
        if (image.Type is not VectorDataViewType { ItemType: NumberDataViewType n } v || n.RawType != typeof(float) || !v.IsKnownSize
            || !(v.Dimensions.Length == 3 && v.Dimensions[0] is 1 or 3 || v.Dimensions.Length == 2))
            throw new ArgumentOutOfRangeException(nameof(imageColumnName),
                $"Image column '{imageColumnName}' of the {what} data is {image.Type}; class accuracy reads a known-size Single vector [C, H, W] or [H, W] " +
                "with values in [0, 1] (McDit's loaders' 'Image', the generator's 'GeneratedPixels', or ExtractPixels with scale 1/255).");
        var dims = v.Dimensions;
        long[] chw = dims.Length == 3 ? new long[] { dims[0], dims[1], dims[2] } : new long[] { 1, dims[0], dims[1] };
        int size = (int)(chw[0] * chw[1] * chw[2]);
        var pixels = new List<float>();
        var labels = new List<long>();
        using (var cursor = data.GetRowCursor(new[] { image, label }))
        {
            var getImage = cursor.GetGetter<VBuffer<float>>(image);
            var getLabel = IndexColumn.CreateGetter(cursor, label);
            var buffer = default(VBuffer<float>);
            var row = new float[size];
            long index = 0;
            while (cursor.MoveNext())
            {
                long y = getLabel();
                if (y == IndexColumn.Missing || y < 0)
                    throw new ArgumentOutOfRangeException(nameof(labelColumnName), $"Row {index} of the {what} data has a missing or negative label in column '{labelColumnName}'.");
                getImage(ref buffer);
                buffer.CopyTo(row);
                for (int i = 0; i < size; i++) pixels.Add(row[i] * 2f - 1f);
                labels.Add(y);
                index++;
            }
        }
        int classes = label.Type is KeyDataViewType key ? (int)key.Count : (int)(labels.Count == 0 ? 0 : labels.Max() + 1);
        var names = label.Type is KeyDataViewType ? TrainingPlan.KeyNames(label, classes) : null;
        var images = tensor(pixels.ToArray(), new long[] { labels.Count, chw[0], chw[1], chw[2] });
        return (images, tensor(labels.ToArray()), classes, names);
    }
}
