namespace McDit.MLNet.Data;

/// <summary>How an image folder's images are brought to the square target size.</summary>
public enum ImageFitMode
{
    /// <summary>Scale the shorter side to the target size, then cut the centre square (torchvision's Resize + CenterCrop).</summary>
    CenterCrop,
    /// <summary>Scale each side to the target size, changing the aspect ratio.</summary>
    Squash,
}

/// <summary>Options of <c>mlContext.McDit().Data.LoadImageFolder</c>.</summary>
public sealed class ImageFolderOptions
{
    /// <summary>The extensions read by default (any case): png, jpg, jpeg, bmp, gif, webp.</summary>
    public static IReadOnlyList<string> DefaultExtensions { get; } = Array.AsReadOnly(new[] { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" });

    /// <summary>Side S of the square S×S images of the <c>Image</c> column (pixels); images of another size are resized
    /// (bicubic) as <see cref="FitMode"/> says; images of exactly S×S are taken as they are.</summary>
    public int ImageSize { get; set; } = 32;

    /// <summary>Channels of the <c>Image</c> column: 3 (RGB planes) or 1 (grey, luminance 0.299 R + 0.587 G + 0.114 B).
    /// Transparency is dropped (the stored colour of each pixel is kept).</summary>
    public int Channels { get; set; } = 3;

    /// <summary>How non-square images or images of another size become S×S.</summary>
    public ImageFitMode FitMode { get; set; } = ImageFitMode.CenterCrop;

    /// <summary>Largest image file read, in bytes; larger files are refused (or skipped) without being read.</summary>
    public long MaxFileBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Largest image accepted, in pixels (width × height), as its header says; larger images are refused (or
    /// skipped) before their pixel data is decoded.</summary>
    public long MaxPixels { get; set; } = 4096L * 4096;

    /// <summary>
    /// False (default): an unreadable, corrupt, unsupported or too large file stops loading with an
    /// <see cref="InvalidDataException"/> naming the file and the reason. Loading checks each file's size and header;
    /// a file whose pixel data turns out corrupt fails when a cursor first reads it.
    /// True: such files are left out and counted (<see cref="LabeledImageDataView.SkippedFiles"/>), and a warning
    /// is logged. So that every cursor sees the same rows, loading then decodes every image once (and drops the pixels).
    /// </summary>
    public bool SkipUnreadable { get; set; }

    /// <summary>File extensions read (with the dot, any case); null means <see cref="DefaultExtensions"/>. ImageSharp also
    /// decodes .tga, .tif/.tiff and .pbm/.pgm/.ppm when they are listed here. Other files are ignored.</summary>
    public IReadOnlyList<string>? Extensions { get; set; }

    /// <summary>Give the <c>Image</c> column as ML.NET images (<c>MLImage</c>, Bgra32) instead of float vectors.</summary>
    public bool AsImage { get; set; }
}
