using McDit.MLNet.Internal;
using McDit.Torch.Models;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace McDit.MLNet.Trainers;

/// <summary>
/// What the trainer reads from a schema: the image column and its shape, the label column and the number of classes.
/// Every check here runs before training and names the column and what was expected.
/// </summary>
sealed class TrainingPlan
{
    public required string ImageColumnName { get; init; }
    public required ImageShape Shape { get; init; }
    public string? LabelColumnName { get; init; }
    public int NumberOfClasses { get; init; }
    public string[]? ClassNames { get; init; }

    public static TrainingPlan Create(DataViewSchema schema, McDitTrainer.Options o)
    {
        var shape = ImageColumnReader.ResolveShape(schema, o.ImageColumnName, o.Channels, o.Height, o.Width);
        McDitTrainer.CheckSeedColumn(SchemaShape.Create(schema), o);
        int classes = 0;
        string[]? names = null;
        if (o.LabelColumnName is { } labelName)
        {
            var column = schema.GetColumnOrNull(labelName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Label column '{labelName}' was not found; expected {IndexColumn.Expected}, or set the label column name to null " +
                    $"for an unconditional model. The data has: {ImageColumnReader.Describe(schema)}.");
            if (!IndexColumn.IsSupported(column.Type))
                throw new ArgumentOutOfRangeException(nameof(schema), $"Label column '{labelName}' has type {column.Type}; expected {IndexColumn.Expected}.");
            if (column.Type is KeyDataViewType key)
            {
                if (key.Count > int.MaxValue - 1)
                    throw new ArgumentOutOfRangeException(nameof(schema), $"Label column '{labelName}' is a key type of {key.Count} values; expected at most {int.MaxValue - 1} classes.");
                classes = o.NumberOfClasses > 0 ? o.NumberOfClasses : (int)key.Count;
                names = KeyNames(column, classes);
            }
            else
                classes = o.NumberOfClasses;
            if (classes <= 0)
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Label column '{labelName}' holds {column.Type} class indices, which do not say how many classes there are: " +
                    "set Options.NumberOfClasses, or make it a key type (MapValueToKey).");
        }
        return new TrainingPlan
        {
            ImageColumnName = o.ImageColumnName,
            Shape = shape,
            LabelColumnName = o.LabelColumnName,
            NumberOfClasses = classes,
            ClassNames = names,
        };
    }

    internal static string[]? KeyNames(DataViewSchema.Column column, int classes)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (annotation is not { Type: VectorDataViewType { ItemType: TextDataViewType } }) return null;
        VBuffer<ReadOnlyMemory<char>> values = default;
        column.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref values);
        var dense = values.DenseValues().Select(v => v.ToString()).ToArray();
        return dense.Length == classes ? dense : null;
    }

    /// <summary>The network shape for this data: the explicit config or the named preset, with the data's shape and classes.</summary>
    public DiffusionTransformerConfig Backbone(McDitTrainer.Options o)
    {
        int patch = o.ModelConfig?.PatchSize ?? DiffusionTransformerConfig.ParseName(o.Model).PatchSize;
        if (Shape.Height % patch != 0)
            throw new ArgumentOutOfRangeException(nameof(o),
                $"Images of column '{ImageColumnName}' are {Shape.Height}×{Shape.Width}, not divisible by the patch size {patch} of model " +
                $"'{(o.ModelConfig is null ? o.Model : "ModelConfig")}'; pad or resize the images, or pick another patch size.");
        if (o.ModelConfig is { } config)
            return (config with { InputSize = Shape.Height, InChannels = Shape.Channels, NumClasses = NumberOfClasses }).Validated();
        var (size, p) = DiffusionTransformerConfig.ParseName(o.Model);
        return DiffusionTransformerConfig.Preset(size, p, Shape.Height, Shape.Channels, NumberOfClasses) with { OutputConvolution = o.OutputConvolution, OutputOverlap = o.OutputOverlap };
    }

    /// <summary>The columns a training cursor reads.</summary>
    public IEnumerable<DataViewSchema.Column> InputColumns(DataViewSchema schema)
    {
        yield return schema[ImageColumnName];
        if (LabelColumnName is not null) yield return schema[LabelColumnName];
    }

    public BatchReader CreateReader(DataViewRowCursor cursor, McDitTrainer.Options o) => new(this, cursor, o);

    /// <summary>One streaming pass over the data: checks every row (as the training reader would) and counts them.</summary>
    /// <exception cref="InvalidOperationException">The data has no rows, or a row holds a bad value.</exception>
    public long CountAndValidate(IDataView data, IHost host, McDitTrainer.Options options)
    {
        using var cursor = data.GetRowCursor(InputColumns(data.Schema));
        var reader = CreateReader(cursor, options);
        var buffer = new float[Shape.Size];
        var labels = new long[1];
        long rows = 0;
        while (reader.ReadBatch(buffer, labels, 1) == 1)
        {
            rows++;
            if ((rows & 1023) == 0) host.CheckAlive();
        }
        if (rows == 0)
            throw new InvalidOperationException(
                $"The training data has no rows (image column '{ImageColumnName}'); expected at least one image.");
        return rows;
    }

    /// <summary>Reads batches of rows from a cursor into a float buffer [B·C·H·W] in [-1, 1] and labels [B].</summary>
    public sealed class BatchReader
    {
        readonly TrainingPlan _plan;
        readonly DataViewRowCursor _cursor;
        readonly ImageColumnReader _image;
        readonly Func<long>? _label;

        public McDitTrainer.Options Options { get; }

        public BatchReader(TrainingPlan plan, DataViewRowCursor cursor, McDitTrainer.Options options)
        {
            _plan = plan;
            _cursor = cursor;
            Options = options;
            _image = new ImageColumnReader(cursor, cursor.Schema[plan.ImageColumnName], plan.Shape,
                options.InputMinimum, options.InputMaximum, options.ValidateInputRange);
            if (plan.LabelColumnName is not null)
                _label = IndexColumn.CreateGetter(cursor, cursor.Schema[plan.LabelColumnName]);
        }

        /// <summary>Reads up to <paramref name="count"/> rows; returns how many were read (0 at the end).</summary>
        public int ReadBatch(float[] buffer, long[] labels, int count) => ReadBatch(buffer, labels, count, 0, 1, out _);

        /// <summary>
        /// Reads a global batch of up to <paramref name="count"/> rows and keeps (converts) only the rows of rank
        /// <paramref name="rank"/> of <paramref name="worldSize"/> (rows rank, rank + worldSize, …; see BatchShard);
        /// returns the global batch's row count and sets <paramref name="kept"/> to this rank's.
        /// </summary>
        public int ReadBatch(float[] buffer, long[] labels, int count, int rank, int worldSize, out int kept)
        {
            int size = _plan.Shape.Size, n = 0, i = 0;
            for (; i < count && _cursor.MoveNext(); i++)
            {
                if (i % worldSize != rank) continue; // another rank's row: skipped without decoding
                long position = _cursor.Position;
                _image.Read(buffer.AsSpan(n * size, size), position);
                if (_label is not null)
                {
                    long value = _label();
                    if (value == IndexColumn.Missing || value < 0 || value >= _plan.NumberOfClasses)
                        throw new InvalidOperationException(
                            $"Label column '{_plan.LabelColumnName}', row {position}: " +
                            (value == IndexColumn.Missing ? "the label is missing (key 0, NaN or not a whole number)" : $"class {value} is out of range") +
                            $"; expected a class in 0..{_plan.NumberOfClasses - 1}" +
                            (_cursor.Schema[_plan.LabelColumnName].Type is KeyDataViewType ? $" (key values 1..{_plan.NumberOfClasses})." : "."));
                    labels[n] = value;
                }
                n++;
            }
            kept = n;
            return i;
        }
    }
}
