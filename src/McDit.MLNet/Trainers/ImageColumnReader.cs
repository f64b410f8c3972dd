using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace McDit.MLNet.Trainers;

/// <summary>What the image column holds (an <see cref="MLImage"/> column, or a float vector in CHW order) and the C×H×W shape the model sees.</summary>
readonly record struct ImageShape(bool IsImage, int Channels, int Height, int Width)
{
    public int Size => Channels * Height * Width;
}

/// <summary>
/// Turns the image column of a row into C·H·W floats in [-1, 1]: an <see cref="MLImage"/> (Bgra32 or Rgba32 pixels,
/// 0..255 mapped to [-1, 1], grey = luminance) or a float vector in CHW order whose values in
/// [<c>min</c>, <c>max</c>] are mapped linearly to [-1, 1]. Every value is checked; errors name the column and row.
/// </summary>
sealed class ImageColumnReader
{
    const string VectorExpectation = "a known-size vector of Single in CHW order (for example from ExtractPixels) or an MLImage (ImageDataViewType)";

    /// <summary>
    /// Resolves the shape: for a vector column from its dimensions ([C, H, W] or [H, W]) or the given C/H/W; for an
    /// image column from the <see cref="ImageDataViewType"/> size or the given H/W, with C = the given channels or 3.
    /// </summary>
    public static ImageShape ResolveShape(DataViewSchema schema, string name, int channels, int height, int width)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema),
                $"Image column '{name}' was not found; expected {VectorExpectation}. The data has: {Describe(schema)}.");
        var type = column.Type;
        if (type is ImageDataViewType image)
        {
            int c = channels == 0 ? 3 : channels;
            if (c is not (1 or 3))
                throw new ArgumentOutOfRangeException(nameof(channels), channels,
                    $"Image column '{name}' holds MLImages: Channels must be 1 (grey), 3 (colour) or 0 (colour); got {channels}.");
            int h = height != 0 ? height : image.Height, w = width != 0 ? width : image.Width;
            if (h <= 0 || w <= 0)
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Image column '{name}' holds MLImages of unknown size; set Height and Width in the options, or resize the images first (ResizeImages).");
            if ((image.Height != 0 && image.Height != h) || (image.Width != 0 && image.Width != w))
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Image column '{name}' holds {image.Height}×{image.Width} images; the options ask for {h}×{w}.");
            return CheckSquare(name, new ImageShape(true, c, h, w));
        }
        if (type is not VectorDataViewType { ItemType: NumberDataViewType n } vector || n != NumberDataViewType.Single || !vector.IsKnownSize)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Image column '{name}' has type {type}; expected {VectorExpectation}.");
        ImageShape shape;
        if (channels != 0 || height != 0 || width != 0)
        {
            if (channels < 1 || height < 1 || width < 1)
                throw new ArgumentOutOfRangeException(nameof(channels),
                    $"Channels, Height and Width must all be positive, or all 0 to take them from the dimensions of column '{name}'; got C={channels}, H={height}, W={width}.");
            shape = new ImageShape(false, channels, height, width);
        }
        else
        {
            var dims = vector.Dimensions;
            shape = dims.Length switch
            {
                3 => new ImageShape(false, dims[0], dims[1], dims[2]),
                2 => new ImageShape(false, 1, dims[0], dims[1]),
                _ => throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Image column '{name}' has dimensions [{string.Join(", ", dims)}], which do not say C, H and W: " +
                    "set Channels, Height and Width in the options, or use a column with dimensions [C, H, W] or [H, W]."),
            };
        }
        if (vector.Size != shape.Size)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Image column '{name}' has vectors of {vector.Size} values; expected C·H·W = {shape.Channels}·{shape.Height}·{shape.Width} = {shape.Size}.");
        return CheckSquare(name, shape);
    }

    static ImageShape CheckSquare(string name, ImageShape shape)
    {
        if (shape.Height != shape.Width)
            throw new ArgumentOutOfRangeException(nameof(shape),
                $"Image column '{name}' holds {shape.Height}×{shape.Width} images; the diffusion transformer expects square images (H = W). Resize or pad them first.");
        return shape;
    }

    internal static string Describe(DataViewSchema schema)
    {
        var names = schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'").Distinct().ToList();
        return names.Count == 0 ? "no columns" : string.Join(", ", names);
    }

    readonly string _name;
    readonly ImageShape _shape;
    readonly float _scale, _offset, _min, _max, _inputMinimum, _inputMaximum;
    readonly bool _checkRange;
    readonly ValueGetter<VBuffer<float>>? _vectorGetter;
    readonly ValueGetter<MLImage>? _imageGetter;
    VBuffer<float> _vector;
    MLImage _image = null!;

    /// <param name="row">The row (cursor) to read from.</param>
    /// <param name="column">The image column.</param>
    /// <param name="shape">The resolved shape.</param>
    /// <param name="inputMinimum">The float value that maps to −1.</param>
    /// <param name="inputMaximum">The float value that maps to +1.</param>
    /// <param name="checkRange">Reject float values outside [min, max] (with a small tolerance).</param>
    public ImageColumnReader(DataViewRow row, DataViewSchema.Column column, ImageShape shape, float inputMinimum, float inputMaximum, bool checkRange)
    {
        _name = column.Name;
        _shape = shape;
        _scale = 2f / (inputMaximum - inputMinimum);
        _offset = -1f - inputMinimum * _scale;
        float tolerance = 1e-3f * (inputMaximum - inputMinimum);
        _min = inputMinimum - tolerance;
        _max = inputMaximum + tolerance;
        _checkRange = checkRange;
        _inputMinimum = inputMinimum;
        _inputMaximum = inputMaximum;
        if (shape.IsImage) _imageGetter = row.GetGetter<MLImage>(column);
        else _vectorGetter = row.GetGetter<VBuffer<float>>(column);
    }

    /// <summary>Reads the current row into <paramref name="destination"/> (C·H·W values in [-1, 1]).</summary>
    /// <param name="destination">Where the C·H·W values go.</param>
    /// <param name="position">The row's position, for error messages.</param>
    public void Read(Span<float> destination, long position)
    {
        if (_imageGetter is not null) ReadImage(destination, position);
        else ReadVector(destination, position);
    }

    void ReadVector(Span<float> destination, long position)
    {
        _vectorGetter!(ref _vector);
        if (_vector.Length != _shape.Size)
            throw new InvalidOperationException(
                $"Image column '{_name}', row {position}: the vector has {_vector.Length} values; expected C·H·W = {_shape.Size}.");
        _vector.CopyTo(destination);
        for (int i = 0; i < destination.Length; i++)
        {
            float v = destination[i];
            if (!float.IsFinite(v))
                throw new InvalidOperationException(
                    $"Image column '{_name}', row {position}: value {i} (channel {i / (_shape.Height * _shape.Width)}) is {v}; expected finite pixel values.");
            if (_checkRange && (v < _min || v > _max))
                throw new InvalidOperationException(
                    $"Image column '{_name}', row {position}: value {i} is {v}, outside the expected input range [{_inputMinimum}, {_inputMaximum}]; " +
                    "set InputMinimum/InputMaximum to the range of the data (for example 0 and 255 when ExtractPixels runs without scaleImage 1/255), " +
                    "or set ValidateInputRange to false.");
            destination[i] = v * _scale + _offset;
        }
    }

    void ReadImage(Span<float> destination, long position)
    {
        _imageGetter!(ref _image);
        var image = _image;
        if (image is null)
            throw new InvalidOperationException($"Image column '{_name}', row {position}: the image is missing (null).");
        if (image.Height != _shape.Height || image.Width != _shape.Width)
            throw new InvalidOperationException(
                $"Image column '{_name}', row {position}: the image is {image.Height}×{image.Width}; expected {_shape.Height}×{_shape.Width} (resize it first).");
        int r, g, b;
        switch (image.PixelFormat)
        {
            case MLPixelFormat.Bgra32: (b, g, r) = (0, 1, 2); break;
            case MLPixelFormat.Rgba32: (r, g, b) = (0, 1, 2); break;
            default:
                throw new InvalidOperationException(
                    $"Image column '{_name}', row {position}: pixel format {image.PixelFormat}; expected Bgra32 or Rgba32.");
        }
        var pixels = image.Pixels;
        int plane = _shape.Height * _shape.Width;
        const float toUnit = 2f / 255f;
        for (int i = 0; i < plane; i++)
        {
            var px = pixels.Slice(i * 4, 4);
            if (_shape.Channels == 1)
                destination[i] = (0.299f * px[r] + 0.587f * px[g] + 0.114f * px[b]) * toUnit - 1f;
            else
            {
                destination[i] = px[r] * toUnit - 1f;
                destination[plane + i] = px[g] * toUnit - 1f;
                destination[2 * plane + i] = px[b] * toUnit - 1f;
            }
        }
    }
}
