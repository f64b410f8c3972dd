using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace McDit.MLNet.Imaging;

/// <summary>
/// Generated images as single PNG files named <c>&lt;class&gt;_&lt;index&gt;.png</c> (class index, then the sample's
/// index within its class), and a folder of such files read back for evaluation, so nothing is sampled twice.
/// </summary>
public static class ImageFiles
{
    /// <summary>The optional grid written beside the single images (<c>mcdit sample --format png --grid</c>); not read back as a sample.</summary>
    public const string GridFileName = "grid.png";

    /// <summary>
    /// Writes each image [C, H, W] of <paramref name="images"/> ([N, C, H, W] in [−1, 1], C = 1 or 3) as a PNG in
    /// <paramref name="folder"/>: <c>&lt;class&gt;_&lt;index&gt;.png</c> with <paramref name="classes"/>[i] and the
    /// image's index among those of its class (zero-padded), or <c>sample_&lt;index&gt;.png</c> without classes.
    /// </summary>
    /// <returns>The paths written, in image order.</returns>
    public static IReadOnlyList<string> SavePngs(Tensor images, string folder, IReadOnlyList<int>? classes = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (images.ndim != 4 || images.shape[1] is not (1 or 3))
            throw new ArgumentException($"images has shape [{string.Join(", ", images.shape)}]; expected [N, C, H, W] with C = 1 or 3.", nameof(images));
        int n = (int)images.shape[0], c = (int)images.shape[1], h = (int)images.shape[2], w = (int)images.shape[3];
        if (classes is not null && classes.Count != n)
            throw new ArgumentException($"Got {classes.Count} classes for {n} images; expected one per image.", nameof(classes));
        Directory.CreateDirectory(folder);
        byte[] bytes;
        using (NewDisposeScope())
            bytes = ((images.detach().to(float32, CPU) + 1f) * 127.5f).round().clamp(0, 255).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var perClass = new Dictionary<int, int>();
        int digits = Math.Max(2, (n - 1).ToString(CultureInfo.InvariantCulture).Length);
        var paths = new List<string>(n);
        int plane = h * w;
        for (int i = 0; i < n; i++)
        {
            string name;
            if (classes is null) name = $"sample_{i.ToString("D" + digits, CultureInfo.InvariantCulture)}.png";
            else
            {
                int k = classes[i];
                perClass.TryGetValue(k, out int j);
                perClass[k] = j + 1;
                name = string.Create(CultureInfo.InvariantCulture, $"{k}_{j.ToString("D" + digits, CultureInfo.InvariantCulture)}.png");
            }
            using var image = new Image<Rgb24>(w, h);
            int start = i * c * plane;
            image.ProcessPixelRows(access =>
            {
                for (int y = 0; y < h; y++)
                {
                    var row = access.GetRowSpan(y);
                    for (int x = 0; x < w; x++)
                    {
                        int p = start + y * w + x;
                        row[x] = c == 1 ? new Rgb24(bytes[p], bytes[p], bytes[p]) : new Rgb24(bytes[p], bytes[p + plane], bytes[p + 2 * plane]);
                    }
                }
            });
            var path = Path.Combine(folder, name);
            image.SaveAsPng(path);
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>
    /// Reads every <c>*.png</c> of <paramref name="folder"/> but <see cref="GridFileName"/> (sorted by name) as images [N, C, H, W] in [−1, 1]
    /// (<paramref name="channels"/> 1: the luminance of RGB files; 3: RGB), with each file's class from its name
    /// <c>&lt;class&gt;_&lt;index&gt;.png</c>; Classes is null when some file's name has no class index.
    /// </summary>
    /// <param name="folder">The folder.</param>
    /// <param name="channels">1 or 3.</param>
    /// <param name="height">Required height (null: the first file's).</param>
    /// <param name="width">Required width (null: the first file's).</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">The folder has no PNG, a file is not a readable PNG, or sizes differ; the message names the file.</exception>
    public static (Tensor Images, int[]? Classes, IReadOnlyList<string> Files) LoadPngFolder(string folder, int channels, int? height = null, int? width = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "Expected 1 or 3 channels.");
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");
        var files = Directory.EnumerateFiles(folder, "*.png").Where(f => !string.Equals(Path.GetFileName(f), GridFileName, StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new InvalidDataException($"Image folder '{folder}' holds no .png files (expected <class>_<index>.png, as `mcdit sample --format png` writes).");
        var classes = new int[files.Count];
        bool allClassed = true;
        float[]? pixels = null;
        int h = 0, w = 0;
        for (int i = 0; i < files.Count; i++)
        {
            Image<Rgb24> image;
            try
            {
                image = Image.Load<Rgb24>(files[i]);
            }
            catch (Exception e) when (e is UnknownImageFormatException or InvalidImageContentException or IOException)
            {
                throw new InvalidDataException($"'{files[i]}' is not a readable PNG: {e.Message}", e);
            }
            using (image)
            {
                if (pixels is null)
                {
                    h = height ?? image.Height;
                    w = width ?? image.Width;
                    pixels = new float[(long)files.Count * channels * h * w is var total && total <= Array.MaxLength ? (int)total
                        : throw new InvalidDataException($"Image folder '{folder}': {files.Count} images of {h}×{w} are too many to evaluate at once.")];
                }
                if (image.Height != h || image.Width != w)
                    throw new InvalidDataException($"'{files[i]}' is {image.Width}×{image.Height}; expected {w}×{h} like the {(height is null ? "first file" : "reference images")}.");
                int plane = h * w, start = i * channels * plane;
                image.ProcessPixelRows(access =>
                {
                    for (int y = 0; y < h; y++)
                    {
                        var row = access.GetRowSpan(y);
                        for (int x = 0; x < w; x++)
                        {
                            var p = row[x];
                            int o = start + y * w + x;
                            if (channels == 1) pixels[o] = (0.299f * p.R + 0.587f * p.G + 0.114f * p.B) / 127.5f - 1f;
                            else
                            {
                                pixels[o] = p.R / 127.5f - 1f;
                                pixels[o + plane] = p.G / 127.5f - 1f;
                                pixels[o + 2 * plane] = p.B / 127.5f - 1f;
                            }
                        }
                    }
                });
            }
            var name = Path.GetFileNameWithoutExtension(files[i]);
            int underscore = name.IndexOf('_');
            if (underscore > 0 && int.TryParse(name.AsSpan(0, underscore), NumberStyles.None, CultureInfo.InvariantCulture, out int k)) classes[i] = k;
            else allClassed = false;
        }
        return (tensor(pixels!, new long[] { files.Count, channels, h, w }), allClassed ? classes : null, files);
    }
}
