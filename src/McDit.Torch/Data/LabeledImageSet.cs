using System.Collections.ObjectModel;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Data;

/// <summary>
/// An in-memory set of uint8 images with integer class labels, kept compact as bytes (N·C·H·W) and turned into
/// float32 tensors in [-1, 1] only when asked (<see cref="ToTensor(int)"/>, <see cref="ImageBatchIterator"/>).
/// </summary>
public sealed class LabeledImageSet
{
    readonly byte[] _pixels;
    readonly int[] _labels;

    /// <summary>Creates a set; <paramref name="pixels"/> and <paramref name="labels"/> are taken over, not copied.</summary>
    /// <param name="pixels">Pixels in NCHW order (image after image, channel after channel, row-major), 0 = black, 255 = white.</param>
    /// <param name="labels">One class index per image, in [0, classNames.Count).</param>
    /// <param name="channels">Channels C (1 or 3).</param>
    /// <param name="height">Image height H.</param>
    /// <param name="width">Image width W.</param>
    /// <param name="classNames">Name of each class; its count is the number of classes.</param>
    public LabeledImageSet(byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Expected 1 (grey) or 3 (RGB) channels.");
        if (height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(height), $"Image size {height}×{width}: expected at least 1×1.");
        if (classNames.Count < 1)
            throw new ArgumentException("Expected at least one class name.", nameof(classNames));
        long imageSize = (long)channels * height * width;
        if (pixels.Length != labels.Length * imageSize)
            throw new ArgumentException(
                $"Expected {labels.Length} images × {channels}×{height}×{width} = {labels.Length * imageSize} pixels, got {pixels.Length}.",
                nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentOutOfRangeException(nameof(labels),
                    $"Label {labels[i]} of image {i} is out of range; expected 0 to {classNames.Count - 1}.");
        _pixels = pixels;
        _labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        ClassNames = Array.AsReadOnly(classNames.ToArray());
        Labels = Array.AsReadOnly(labels);
    }

    /// <summary>Number of images N.</summary>
    public int Count => _labels.Length;
    /// <summary>Channels per image C.</summary>
    public int Channels { get; }
    /// <summary>Image height H.</summary>
    public int Height { get; }
    /// <summary>Image width W.</summary>
    public int Width { get; }
    /// <summary>Bytes per image, C·H·W.</summary>
    public int ImageSize => Channels * Height * Width;
    /// <summary>Class names; their count is <see cref="ClassCount"/>.</summary>
    public ReadOnlyCollection<string> ClassNames { get; }
    /// <summary>Number of classes.</summary>
    public int ClassCount => ClassNames.Count;
    /// <summary>Class index of each image.</summary>
    public ReadOnlyCollection<int> Labels { get; }
    /// <summary>All pixels, NCHW, uint8.</summary>
    public ReadOnlyMemory<byte> Pixels => _pixels;

    /// <summary>The pixels of image <paramref name="index"/>, CHW.</summary>
    public ReadOnlySpan<byte> GetImage(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Expected 0 to {Count - 1}.");
        return _pixels.AsSpan(index * ImageSize, ImageSize);
    }

    /// <summary>Number of images of each class, indexed by class.</summary>
    public int[] CountPerClass()
    {
        var counts = new int[ClassCount];
        foreach (var l in _labels) counts[l]++;
        return counts;
    }

    /// <summary>Converts one uint8 pixel to [-1, 1]: 0 → −1, 255 → 1.</summary>
    public static float ToUnitRange(byte value) => value / 127.5f - 1f;

    /// <summary>All images as a float32 tensor [N, C, H + 2p, W + 2p] in [-1, 1] on the CPU.</summary>
    /// <param name="padding">Pixels added on each side, filled with −1 (black); 2 turns 28×28 into 32×32.</param>
    public Tensor ToTensor(int padding = 0)
    {
        var all = new int[Count];
        for (int i = 0; i < all.Length; i++) all[i] = i;
        return ToTensor(all, padding);
    }

    /// <summary>The images at <paramref name="indices"/> as a float32 tensor [B, C, H + 2p, W + 2p] in [-1, 1] on the CPU.</summary>
    /// <param name="indices">Image indices, in output order; repeats are allowed.</param>
    /// <param name="padding">Pixels added on each side, filled with −1 (black).</param>
    public Tensor ToTensor(ReadOnlySpan<int> indices, int padding = 0)
    {
        if (padding < 0 || padding > IdxReader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"Expected 0 to {IdxReader.MaxSide} pixels of padding.");
        int h = Height + 2 * padding, w = Width + 2 * padding;
        long outSize = (long)indices.Length * Channels * h * w;
        if (outSize > Array.MaxLength)
            throw new ArgumentException($"{indices.Length} images of {Channels}×{h}×{w} do not fit one array.", nameof(indices));
        var data = new float[outSize];
        if (padding > 0) Array.Fill(data, -1f);
        int planeIn = Height * Width, planeOut = h * w;
        for (int b = 0; b < indices.Length; b++)
        {
            int index = indices[b];
            if ((uint)index >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), index, $"Image index {index} at position {b}: expected 0 to {Count - 1}.");
            for (int c = 0; c < Channels; c++)
            {
                int src = index * ImageSize + c * planeIn;
                long dst = ((long)b * Channels + c) * planeOut + (long)padding * w + padding;
                for (int y = 0; y < Height; y++, src += Width, dst += w)
                    for (int x = 0; x < Width; x++)
                        data[dst + x] = _pixels[src + x] / 127.5f - 1f;
            }
        }
        TorchBackend.EnsureInitialized();
        return torch.tensor(data, new long[] { indices.Length, Channels, h, w }, dtype: float32);
    }

    /// <summary>The labels at <paramref name="indices"/> as an int64 tensor [B] on the CPU.</summary>
    public Tensor LabelsToTensor(ReadOnlySpan<int> indices)
    {
        var data = new long[indices.Length];
        for (int b = 0; b < indices.Length; b++)
        {
            int index = indices[b];
            if ((uint)index >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), index, $"Image index {index} at position {b}: expected 0 to {Count - 1}.");
            data[b] = _labels[index];
        }
        TorchBackend.EnsureInitialized();
        return torch.tensor(data, new long[] { indices.Length }, dtype: int64);
    }

    /// <summary>All labels as an int64 tensor [N] on the CPU.</summary>
    public Tensor LabelsToTensor()
    {
        var data = new long[Count];
        for (int i = 0; i < data.Length; i++) data[i] = _labels[i];
        TorchBackend.EnsureInitialized();
        return torch.tensor(data, new long[] { Count }, dtype: int64);
    }
}
