using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Pbm;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tga;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace McDit.MLNet.Data;

/// <summary>
/// Why an image file could not be read (internal: callers either record it as skipped or turn it into the
/// <see cref="InvalidDataException"/> users see, with <see cref="ToInvalidData"/>).
/// </summary>
sealed class UnreadableImageException(string path, string reason, Exception? inner = null)
    : Exception($"Image file '{path}': {reason}", inner)
{
    public string FilePath { get; } = path;
    public string Reason { get; } = reason;

    /// <summary>The public error: an <see cref="InvalidDataException"/> naming the file and the reason.</summary>
    public InvalidDataException ToInvalidData() => new(Message, InnerException);
}

/// <summary>
/// Decodes image files with ImageSharp 2.x within bounds: the file size is checked before the file is read, the
/// header is read (<c>Image.Identify</c>)
/// and the pixel count checked before the pixels are decoded, only the first frame of animations is decoded, and the
/// allocator refuses buffers beyond what the pixel limit needs. Each call reads the file once.
/// </summary>
sealed class BoundedImageDecoder
{
    readonly Configuration _configuration;
    readonly long _maxFileBytes, _maxPixels;
    readonly int _size, _channels;
    readonly ImageFitMode _fit;

    public BoundedImageDecoder(ImageFolderOptions options)
    {
        _maxFileBytes = options.MaxFileBytes;
        _maxPixels = options.MaxPixels;
        _size = options.ImageSize;
        _channels = options.Channels;
        _fit = options.FitMode;
        // A configuration of our own (Configuration.Default.Clone() would share the global format manager).
        _configuration = new Configuration(
            new PngConfigurationModule(), new JpegConfigurationModule(), new GifConfigurationModule(), new BmpConfigurationModule(),
            new WebpConfigurationModule(), new TgaConfigurationModule(), new TiffConfigurationModule(), new PbmConfigurationModule());
        _configuration.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First });
        _configuration.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = FrameDecodingMode.First });
        // Decoders may hold a few working buffers of several bytes per pixel; allow 16 bytes per pixel, at least 64 MB.
        long limitMb = Math.Max(64, (options.MaxPixels * 16 + (1 << 20) - 1) >> 20);
        _configuration.MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions
        {
            AllocationLimitMegabytes = (int)Math.Min(limitMb, int.MaxValue),
        });
    }

    /// <summary>Size of one decoded image, C·S·S bytes.</summary>
    public int ImageBytes => _channels * _size * _size;

    /// <summary>Checks the file size and the header (format and pixel count) without decoding the pixels.</summary>
    /// <exception cref="UnreadableImageException">The file fails a check.</exception>
    public void CheckHeader(string path) => Identify(path, ReadBounded(path));

    /// <summary>Decodes, resizes and writes the image as C·S·S bytes (CHW) into <paramref name="destination"/>.</summary>
    /// <exception cref="UnreadableImageException">The file cannot be read or decoded.</exception>
    public void Decode(string path, Span<byte> destination)
    {
        var bytes = ReadBounded(path);
        Identify(path, bytes);
        Image<Rgb24> image;
        try
        {
            image = Image.Load<Rgb24>(_configuration, bytes);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new UnreadableImageException(path, $"the image data is corrupt or unsupported ({e.GetType().Name}: {e.Message}).", e);
        }
        using (image)
        {
            if (image.Width != _size || image.Height != _size)
                image.Mutate(x => x.Resize(new ResizeOptions
                {
                    Size = new Size(_size, _size),
                    Mode = _fit == ImageFitMode.Squash ? ResizeMode.Stretch : ResizeMode.Crop,
                    Sampler = KnownResamplers.Bicubic,
                }));
            int plane = _size * _size;
            var frame = image.Frames.RootFrame;
            for (int y = 0; y < _size; y++)
            {
                var row = frame.PixelBuffer.DangerousGetRowSpan(y);
                for (int x = 0; x < _size; x++)
                {
                    var p = row[x];
                    int i = y * _size + x;
                    if (_channels == 1)
                        destination[i] = (byte)Math.Clamp(MathF.Round(0.299f * p.R + 0.587f * p.G + 0.114f * p.B), 0f, 255f);
                    else
                    {
                        destination[i] = p.R;
                        destination[plane + i] = p.G;
                        destination[2 * plane + i] = p.B;
                    }
                }
            }
        }
    }

    byte[] ReadBounded(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            long length = stream.Length;
            if (length > _maxFileBytes)
                throw new UnreadableImageException(path,
                    $"the file is {length} bytes, more than the limit of {_maxFileBytes} bytes (ImageFolderOptions.MaxFileBytes); it was not read.");
            if (length == 0) throw new UnreadableImageException(path, "the file is empty.");
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UnreadableImageException(path, $"the file cannot be read ({e.GetType().Name}: {e.Message}).", e);
        }
    }

    void Identify(string path, byte[] bytes)
    {
        IImageInfo? info;
        try
        {
            info = Image.Identify(_configuration, bytes, out _);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new UnreadableImageException(path, $"the image header is corrupt or unsupported ({e.GetType().Name}: {e.Message}).", e);
        }
        if (info is null)
            throw new UnreadableImageException(path,
                "not a recognised image format; expected PNG, JPEG, BMP, GIF, WebP, TGA, TIFF or PBM data.");
        long pixels = (long)info.Width * info.Height;
        if (info.Width <= 0 || info.Height <= 0)
            throw new UnreadableImageException(path, $"the header gives an image size of {info.Width}×{info.Height}.");
        if (pixels > _maxPixels)
            throw new UnreadableImageException(path,
                $"the image is {info.Width}×{info.Height} = {pixels} pixels, more than the limit of {_maxPixels} (ImageFolderOptions.MaxPixels); " +
                "it was not decoded.");
    }
}
