using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Imaging;

/// <summary>
/// Writes a batch of images as one PNG grid, row by row, for looking at samples and data.
/// </summary>
/// <remarks>
/// Layout: cells of (H·scale)×(W·scale) pixels separated by <see cref="Padding"/> pixels of <see cref="Background"/>
/// (no border around the grid); the last row may be partly empty. With row labels, a label column of
/// <see cref="LabelColumnWidth"/> pixels is added on the left and each label is drawn there with a built-in 5×7 pixel
/// font (capitals, digits, common punctuation; lower case drawn as capitals, other characters as boxes).
/// </remarks>
public static class ImageGrid
{
    /// <summary>Pixels between neighbouring cells.</summary>
    public const int Padding = 2;
    /// <summary>Longest row label drawn, in characters; longer labels are cut.</summary>
    public const int MaxLabelLength = 32;
    /// <summary>Largest grid side in pixels.</summary>
    public const int MaxSide = 32768;
    /// <summary>Largest grid area in pixels.</summary>
    public const long MaxPixels = 1L << 26;
    /// <summary>Colour of the padding and the label column.</summary>
    public static readonly Rgb24 Background = new(255, 255, 255);
    /// <summary>Colour of the label text.</summary>
    public static readonly Rgb24 LabelColor = new(0, 0, 0);

    /// <summary>
    /// Renders <paramref name="images"/> as a grid and writes it to <paramref name="path"/> as PNG, atomically
    /// (a temporary file in the same folder, then moved over the target). The folder is created if needed.
    /// </summary>
    /// <param name="images">[N, C, H, W] float tensor in [-1, 1] (−1 black, 1 white), C = 1 (grey) or 3 (RGB); values outside are clamped, NaN is black.</param>
    /// <param name="columns">Cells per row; fewer when N is smaller.</param>
    /// <param name="path">Target PNG file; overwritten if it exists.</param>
    /// <param name="scale">Integer nearest-neighbour upscaling of every image, 1 to 64.</param>
    /// <param name="rowLabels">Optional ASCII label per grid row (at most one per row), drawn to the left of the row.</param>
    public static void SavePng(Tensor images, int columns, string path, int scale = 1, IReadOnlyList<string>? rowLabels = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var grid = Render(images, columns, scale, rowLabels);
        McDit.Torch.IO.AtomicFile.Write(path, stream => grid.SaveAsPng(stream));
    }

    /// <summary>Width of the label column for labels of at most <paramref name="longestLabel"/> characters in cells <paramref name="cellHeight"/> pixels high (0 without labels).</summary>
    public static int LabelColumnWidth(int longestLabel, int cellHeight)
    {
        if (longestLabel <= 0) return 0;
        int length = Math.Min(longestLabel, MaxLabelLength);
        return Padding + BitmapFont5x7.TextWidth(length, FontScale(cellHeight)) + 2 * Padding;
    }

    /// <summary>Integer scale of the 5×7 font for cells <paramref name="cellHeight"/> pixels high: 1 below 32, then one more per 16 pixels.</summary>
    public static int FontScale(int cellHeight) => Math.Max(1, cellHeight / 16);

    /// <summary>Renders the grid in memory (see <see cref="SavePng"/> for the arguments); the caller disposes the image.</summary>
    public static Image<Rgb24> Render(Tensor images, int columns, int scale = 1, IReadOnlyList<string>? rowLabels = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4)
            throw new ArgumentException(
                $"Expected images as [N, C, H, W], got a tensor of shape [{string.Join(", ", images.shape)}].", nameof(images));
        long n = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3];
        if (n < 1)
            throw new ArgumentException("Expected at least one image, got N = 0.", nameof(images));
        if (c is not (1 or 3))
            throw new ArgumentException($"Expected 1 (grey) or 3 (RGB) channels, got C = {c}.", nameof(images));
        if (columns < 1)
            throw new ArgumentOutOfRangeException(nameof(columns), columns, "Expected at least 1 column.");
        if (scale < 1 || scale > 64)
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "Expected an integer scale from 1 to 64.");

        int cols = (int)Math.Min(columns, n);
        int rows = (int)((n + cols - 1) / cols);
        if (rowLabels is not null && rowLabels.Count > rows)
            throw new ArgumentException(
                $"Got {rowLabels.Count} row labels for a grid of {rows} rows ({n} images, {cols} columns); expected at most {rows}.",
                nameof(rowLabels));
        long cellH = h * scale, cellW = w * scale;
        int longest = rowLabels is null ? 0 : rowLabels.Select(l => l?.Length ?? 0).DefaultIfEmpty(0).Max();
        long labelW = cellH > MaxSide ? 0 : LabelColumnWidth(longest, (int)cellH);
        long width = labelW + cols * cellW + (cols - 1) * Padding;
        long height = rows * cellH + (rows - 1) * Padding;
        if (width > MaxSide || height > MaxSide || width * height > MaxPixels)
            throw new ArgumentException(
                $"A grid of {n} images {h}×{w} at scale {scale} in {cols} columns would be {width}×{height} pixels; " +
                $"expected at most {MaxSide} per side and {MaxPixels} pixels. Use fewer images, more columns or a smaller scale.",
                nameof(images));

        float[] data;
        using (NewDisposeScope())
        {
            data = images.detach().to(CPU).to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
        }

        var grid = new Image<Rgb24>((int)width, (int)height, Background);
        try
        {
            int plane = (int)(h * w);
            grid.ProcessPixelRows(access =>
            {
                for (int i = 0; i < n; i++)
                {
                    int x0 = (int)(labelW + (i % cols) * (cellW + Padding));
                    int y0 = (int)((i / cols) * (cellH + Padding));
                    int imageStart = (int)(i * c * plane);
                    for (int y = 0; y < cellH; y++)
                    {
                        var row = access.GetRowSpan(y0 + y);
                        int srcRow = imageStart + (y / scale) * (int)w;
                        for (int x = 0; x < cellW; x++)
                        {
                            int src = srcRow + x / scale;
                            byte r = ToByte(data[src]);
                            row[x0 + x] = c == 1 ? new Rgb24(r, r, r) : new Rgb24(r, ToByte(data[src + plane]), ToByte(data[src + 2 * plane]));
                        }
                    }
                }
            });
            if (labelW > 0 && rowLabels is not null)
                DrawLabels(grid, rowLabels, (int)cellH, (int)width, (int)height);
            return grid;
        }
        catch
        {
            grid.Dispose();
            throw;
        }
    }

    static void DrawLabels(Image<Rgb24> grid, IReadOnlyList<string> labels, int cellH, int width, int height)
    {
        int fs = FontScale(cellH);
        int textH = BitmapFont5x7.GlyphHeight * fs;
        for (int r = 0; r < labels.Count; r++)
        {
            var text = labels[r];
            if (string.IsNullOrEmpty(text)) continue;
            if (text.Length > MaxLabelLength) text = text[..MaxLabelLength];
            int y0 = r * (cellH + Padding) + (cellH - textH) / 2;
            BitmapFont5x7.Draw(text, Padding, y0, fs, (x, y) =>
            {
                if ((uint)x < (uint)width && (uint)y < (uint)height) grid[x, y] = LabelColor;
            });
        }
    }

    /// <summary>Maps [-1, 1] to 0..255 with rounding; clamps outside values, NaN gives 0.</summary>
    internal static byte ToByte(float v)
    {
        if (float.IsNaN(v)) return 0;
        float scaled = (Math.Clamp(v, -1f, 1f) + 1f) * 127.5f;
        return (byte)MathF.Round(scaled);
    }
}
