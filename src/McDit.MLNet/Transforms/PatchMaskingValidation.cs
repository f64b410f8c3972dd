using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.MLNet.Transforms;

/// <summary>Checks of the patch masker's options and input column; every message names the column or option.</summary>
static class PatchMaskingValidation
{
    /// <summary>Checks options that do not depend on the data. With <paramref name="shapeRequired"/> false, C = H = W = 0 means "from the column".</summary>
    public static void CheckOptions(string outputColumnName, string inputColumnName, int channels, int height, int width,
        int patchSize, double maskRatio, bool shapeRequired)
    {
        if (string.IsNullOrWhiteSpace(outputColumnName))
            throw new ArgumentException("The output column name must not be empty.", nameof(outputColumnName));
        if (string.IsNullOrWhiteSpace(inputColumnName))
            throw new ArgumentException("The input column name must not be empty.", nameof(inputColumnName));
        if (patchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(patchSize), patchSize, $"The patch size must be at least 1; got {patchSize}.");
        if (double.IsNaN(maskRatio) || maskRatio < 0 || maskRatio >= 1)
            throw new ArgumentOutOfRangeException(nameof(maskRatio), maskRatio, $"The mask ratio must be in [0, 1); got {maskRatio}.");
        bool none = channels == 0 && height == 0 && width == 0;
        if (none && !shapeRequired) return;
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(channels),
                $"Channels, height and width must all be positive (or all 0 to take them from the column's dimensions); got C={channels}, H={height}, W={width}.");
        CheckDivisible(height, width, patchSize);
    }

    static void CheckDivisible(int height, int width, int patchSize)
    {
        if (height % patchSize != 0)
            throw new ArgumentOutOfRangeException(nameof(height), height, $"The height H={height} is not divisible by the patch size {patchSize}.");
        if (width % patchSize != 0)
            throw new ArgumentOutOfRangeException(nameof(width), width, $"The width W={width} is not divisible by the patch size {patchSize}.");
    }

    /// <summary>
    /// Resolves C, H and W: the given ones, or when all are 0 the column's dimensions ([C, H, W], or [H, W] with C = 1).
    /// </summary>
    public static (int Channels, int Height, int Width) ResolveShape(DataViewSchema schema, string inputColumnName,
        int channels, int height, int width, int patchSize)
    {
        var type = FindVectorColumn(schema, inputColumnName, out _);
        if (channels != 0 || height != 0 || width != 0) return (channels, height, width);
        var dims = type.Dimensions;
        (int C, int H, int W) shape = dims.Length switch
        {
            3 => (dims[0], dims[1], dims[2]),
            2 => (1, dims[0], dims[1]),
            _ => throw new ArgumentOutOfRangeException(nameof(schema),
                $"Input column '{inputColumnName}' has dimensions [{string.Join(", ", dims)}], which do not say C, H and W: " +
                "give channels, height and width, or use a column with dimensions [C, H, W] or [H, W]."),
        };
        CheckDivisible(shape.H, shape.W, patchSize);
        return shape;
    }

    /// <summary>Checks that the input column exists, is a known-size float vector and holds C·H·W values.</summary>
    public static VectorDataViewType CheckInputColumn(DataViewSchema schema, string inputColumnName,
        int channels, int height, int width, int patchSize, out int index)
    {
        var type = FindVectorColumn(schema, inputColumnName, out index);
        long expected = (long)channels * height * width;
        if (type.Size != expected)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Input column '{inputColumnName}' has {type.Size} values; expected C·H·W = {channels}·{height}·{width} = {expected}.");
        CheckDivisible(height, width, patchSize);
        return type;
    }

    static VectorDataViewType FindVectorColumn(DataViewSchema schema, string name, out int index)
    {
        var column = schema.GetColumnOrNull(name);
        if (column is null)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Input column '{name}' was not found. The data has: {Describe(schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        index = column.Value.Index;
        if (column.Value.Type is not VectorDataViewType { ItemType: NumberDataViewType n, IsKnownSize: true } vector || n != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Input column '{name}' must be a known-size vector of Single (float32, C·H·W values); found {column.Value.Type}.");
        return vector;
    }

    /// <summary>Checks the input column of a schema shape (no sizes are known there).</summary>
    public static void CheckInputColumn(SchemaShape schema, string name)
    {
        if (!schema.TryFindColumn(name, out var column))
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Input column '{name}' was not found. The data has: {Describe(schema.Select(c => c.Name))}.");
        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Input column '{name}' must be a known-size vector of Single (float32, C·H·W values); found {column.Kind} of {column.ItemType}.");
    }

    static string Describe(IEnumerable<string> names)
    {
        var list = names.Distinct().Select(n => $"'{n}'").ToList();
        return list.Count == 0 ? "no columns" : string.Join(", ", list);
    }
}
