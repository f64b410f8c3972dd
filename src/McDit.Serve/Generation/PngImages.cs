using McDit.MLNet.Imaging;
using Microsoft.ML.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace McDit.Serve.Generation;

/// <summary>PNG bytes of generated images and of their grid, made in memory.</summary>
internal static class PngImages
{
    /// <summary>A generated image (Bgra32 <see cref="MLImage"/>) as PNG, and its pixels in [−1, 1] (C·H·W) for the grid.</summary>
    public static (byte[] Png, float[] Pixels) Encode(MLImage image, int channels)
    {
        if (image.PixelFormat != MLPixelFormat.Bgra32)
            throw new InvalidOperationException($"Expected a Bgra32 image from the generator, got {image.PixelFormat}.");
        int w = image.Width, h = image.Height, plane = w * h;
        var bgra = image.Pixels;
        var pixels = new float[channels * plane];
        for (int i = 0; i < plane; i++)
        {
            // Byte b stands for b / 127.5 − 1, which the grid maps back to b exactly (the generator rounded once already).
            pixels[i] = bgra[4 * i + 2] / 127.5f - 1f;
            if (channels == 3)
            {
                pixels[plane + i] = bgra[4 * i + 1] / 127.5f - 1f;
                pixels[2 * plane + i] = bgra[4 * i] / 127.5f - 1f;
            }
        }
        using var png = Image.LoadPixelData<Bgra32>(bgra, w, h);
        return (Save(png), pixels);
    }

    /// <summary>The grid of <c>mcdit sample</c>: one row per class, labelled, each image at scale 2.</summary>
    public static byte[] Grid(IReadOnlyList<float[]> pixels, int channels, int height, int width, int columns, IReadOnlyList<string>? rowLabels)
    {
        var flat = new float[pixels.Count * channels * height * width];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(flat, i * pixels[i].Length);
        using var scope = torch.NewDisposeScope();
        var images = torch.tensor(flat, new long[] { pixels.Count, channels, height, width });
        using var grid = ImageGrid.Render(images, columns, scale: 2, rowLabels);
        return Save(grid);
    }

    static byte[] Save(Image image)
    {
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return stream.ToArray();
    }
}
