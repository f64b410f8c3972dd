using System.Buffers.Binary;
using McDit.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;
using static McDit.MLNet.Tests.Data.LoaderTestKit;

namespace McDit.MLNet.Tests.Data;

public sealed class ImageFolderLoaderTests : TempFolderTest
{
    /// <summary>Pixel (x, y) of image <paramref name="seed"/>: R = 40·seed + x, G = 10·y, B = 200 − x − y.</summary>
    static Rgb24 Colour(int seed, int x, int y) => new((byte)(40 * seed + x), (byte)(10 * y), (byte)(200 - x - y));

    string WritePng(string cls, string name, int seed, int width = 4, int height = 4)
    {
        var folder = Path.Combine(Dir, cls);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, name))!);
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image[x, y] = Colour(seed, x, y);
        var path = Path.Combine(folder, name);
        image.SaveAsPng(path);
        return path;
    }

    static float[] ExpectedRgb(int seed)
    {
        var values = new float[3 * 16];
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
            {
                var c = Colour(seed, x, y);
                values[y * 4 + x] = c.R / 255f;
                values[16 + y * 4 + x] = c.G / 255f;
                values[32 + y * 4 + x] = c.B / 255f;
            }
        return values;
    }

    /// <summary>Two classes, sorted ordinally: "Cats" (2 images, one in a sub-folder) before "dogs" (1 image); plus a non-image file.</summary>
    void WriteClasses()
    {
        WritePng("dogs", "d1.png", 0);
        WritePng("Cats", "c2.png", 1);
        WritePng("Cats", Path.Combine("more", "c1.png"), 2);
        File.WriteAllText(Path.Combine(Dir, "Cats", "notes.txt"), "not an image");
    }

    static ImageFolderOptions Small => new() { ImageSize = 4 };

    [Fact]
    public void ClassesAreSortedSubFoldersWithExactPixelsAndPaths()
    {
        WriteClasses();
        var view = new MLContext().McDit().Data.LoadImageFolder(Dir, Small);

        AssertSchema(view, 3, 4, 4, "Cats", "dogs");
        Assert.Equal(TextDataViewType.Instance, view.Schema["Path"].Type);
        Assert.Equal(3L, view.GetRowCount());
        Assert.Equal(0, view.SkippedCount);
        var rows = ReadAll(view);
        // Files of a class: folder by folder (Cats/ before Cats/more/), then by name.
        Assert.Equal(new[] { Path.Combine(Dir, "Cats", "c2.png"), Path.Combine(Dir, "Cats", "more", "c1.png"), Path.Combine(Dir, "dogs", "d1.png") },
            rows.Select(r => r.Path));
        Assert.Equal(new uint[] { 1, 1, 2 }, rows.Select(r => r.Key));
        Assert.Equal(ExpectedRgb(1), rows[0].Pixels);
        Assert.Equal(ExpectedRgb(2), rows[1].Pixels);
        Assert.Equal(ExpectedRgb(0), rows[2].Pixels);
        AssertShuffleVisitsEveryRowOnce(view);
    }

    [Fact]
    public void GreyResizedAndImageColumns()
    {
        WriteClasses();
        WritePng("dogs", "wide.png", 3, width: 12, height: 6);
        var data = new MLContext().McDit().Data;

        var grey = data.LoadImageFolder(Dir, new ImageFolderOptions { ImageSize = 4, Channels = 1 });
        AssertSchema(grey, 1, 4, 4, "Cats", "dogs");
        var first = ReadAll(grey)[0].Pixels;
        var c = Colour(1, 3, 2);
        Assert.Equal(MathF.Round(0.299f * c.R + 0.587f * c.G + 0.114f * c.B) / 255f, first[2 * 4 + 3], 5);

        foreach (var fit in new[] { ImageFitMode.CenterCrop, ImageFitMode.Squash })
        {
            var resized = data.LoadImageFolder(Dir, new ImageFolderOptions { ImageSize = 3, FitMode = fit });
            AssertSchema(resized, 3, 3, 3, "Cats", "dogs");
            Assert.All(ReadAll(resized), r => Assert.All(r.Pixels, v => Assert.InRange(v, 0f, 1f)));
        }

        var images = data.LoadImageFolder(Dir, new ImageFolderOptions { ImageSize = 4, AsImage = true });
        var type = Assert.IsType<ImageDataViewType>(images.Schema["Image"].Type);
        Assert.Equal((4, 4), (type.Height, type.Width));
        using var cursor = images.GetRowCursor(images.Schema);
        var getter = cursor.GetGetter<MLImage>(images.Schema["Image"]);
        MLImage image = null!;
        Assert.True(cursor.MoveNext());
        getter(ref image);
        var expected = Colour(1, 3, 2);
        Assert.Equal(new[] { expected.B, expected.G, expected.R, (byte)255 }, image.Pixels.Slice(4 * (2 * 4 + 3), 4).ToArray());
        image.Dispose();
    }

    [Fact]
    public void CorruptFileIsAnErrorNamingIt_OrIsSkippedAndCounted()
    {
        WriteClasses();
        var garbage = Path.Combine(Dir, "dogs", "garbage.png");
        File.WriteAllBytes(garbage, Enumerable.Range(0, 100).Select(i => (byte)(i * 37)).ToArray());
        var ml = new MLContext();
        var e = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadImageFolder(Dir, Small));
        Assert.Contains(garbage, e.Message);

        // A PNG cut short: its header is fine, its pixel data is not. Without skipping, loading checks headers only
        // and the cursor that decodes it fails, naming it; with skipping, loading decodes it and leaves it out.
        File.Delete(garbage);
        var good = File.ReadAllBytes(WritePng("dogs", "d2.png", 4));
        var truncated = Path.Combine(Dir, "dogs", "truncated.png");
        File.WriteAllBytes(truncated, good[..(good.Length - 30)]);
        var lazy = ml.McDit().Data.LoadImageFolder(Dir, Small);
        Assert.Equal(5L, lazy.GetRowCount());
        e = Assert.Throws<InvalidDataException>(() => ReadAll(lazy));
        Assert.Contains(truncated, e.Message);

        File.WriteAllBytes(garbage, new byte[] { 1, 2, 3 });
        var messages = new List<string>();
        ml.Log += (_, args) => { lock (messages) messages.Add(args.Message); };
        var skipping = ml.McDit().Data.LoadImageFolder(Dir, new ImageFolderOptions { ImageSize = 4, SkipUnreadable = true });
        Assert.Equal(2, skipping.SkippedCount);
        Assert.Equal(new[] { garbage, truncated }.Order(), skipping.SkippedFiles.Select(s => s.Path).Order());
        Assert.Equal(4L, skipping.GetRowCount());
        Assert.Equal(4, ReadAll(skipping).Count);
        Assert.Contains(messages, m => m.Contains("skipped 2", StringComparison.Ordinal));
    }

    [Fact]
    public void OversizedImagesAreRefusedBeforeDecoding()
    {
        WriteClasses();
        // A PNG whose header claims 60000×60000 pixels (3.6 billion; its data is only 4×4): decoding it would need
        // gigabytes, so the refusal can only come from the header check.
        var bytes = File.ReadAllBytes(WritePng("dogs", "huge.png", 5));
        SetPngSize(bytes, 60000, 60000);
        var huge = Path.Combine(Dir, "dogs", "huge.png");
        File.WriteAllBytes(huge, bytes);
        var ml = new MLContext();
        var e = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadImageFolder(Dir, Small));
        Assert.Contains(huge, e.Message);
        Assert.Contains("MaxPixels", e.Message);

        var skipping = ml.McDit().Data.LoadImageFolder(Dir, new ImageFolderOptions { ImageSize = 4, SkipUnreadable = true });
        Assert.Equal(huge, Assert.Single(skipping.SkippedFiles).Path);
        Assert.Equal(3, ReadAll(skipping).Count);

        // Byte limit: checked before the file is read.
        File.Delete(huge);
        e = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadImageFolder(Dir, new ImageFolderOptions { ImageSize = 4, MaxFileBytes = 40 }));
        Assert.Contains("MaxFileBytes", e.Message);
        Assert.Contains(Path.Combine(Dir, "Cats", "c2.png"), e.Message);
    }

    [Fact]
    public void FolderErrors()
    {
        var data = new MLContext().McDit().Data;
        Assert.Throws<DirectoryNotFoundException>(() => data.LoadImageFolder(Path.Combine(Dir, "none")));
        Assert.Throws<InvalidDataException>(() => data.LoadImageFolder(Dir)); // no class folders
        WriteClasses();
        Directory.CreateDirectory(Path.Combine(Dir, "empty"));
        var e = Assert.Throws<InvalidDataException>(() => data.LoadImageFolder(Dir, Small));
        Assert.Contains("'empty'", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.LoadImageFolder(Dir, new ImageFolderOptions { Channels = 2 }));
    }

    /// <summary>Rewrites the IHDR width and height of a PNG and its CRC.</summary>
    static void SetPngSize(byte[] png, int width, int height)
    {
        // Signature (8) + chunk length (4) + "IHDR" (4): width at 16, height at 20; CRC over type + 13 data bytes at 29.
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
    }

    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
