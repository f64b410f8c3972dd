using McDit.MLNet.Imaging;
using McDit.Torch.Runtime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using Xunit;

namespace McDit.MLNet.Tests.Imaging;

public sealed class ImageGridTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mcdit-grid-" + Guid.NewGuid().ToString("N"));

    public ImageGridTests()
    {
        TorchBackend.EnsureInitialized();
        Directory.CreateDirectory(_dir);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void WritesGreyGridWithPaddingScalingAndClamping()
    {
        // 3 images of 2×3 pixels; image k is filled with value v_k, except its top-left pixel.
        using var images = torch.tensor(new float[] { -1f, 1f, 5f }).reshape(3, 1, 1, 1).expand(3, 1, 2, 3).contiguous();
        images[1, 0, 0, 0] = torch.tensor(-3f);  // clamped to black
        images[2, 0, 1, 2] = torch.tensor(0f);   // mid grey, 127.5 rounds to 128
        var path = Path.Combine(_dir, "sub", "grid.png");
        ImageGrid.SavePng(images, columns: 2, path, scale: 2);

        using var png = Image.Load<Rgb24>(path);
        // 2 columns of 6 px + 2 px padding; 2 rows of 4 px + 2 px padding.
        Assert.Equal(14, png.Width);
        Assert.Equal(10, png.Height);
        Assert.Equal(new Rgb24(0, 0, 0), png[0, 0]);        // image 0, black
        Assert.Equal(new Rgb24(0, 0, 0), png[5, 3]);        // image 0, last pixel of its cell
        Assert.Equal(ImageGrid.Background, png[6, 0]);      // padding column
        Assert.Equal(ImageGrid.Background, png[7, 3]);
        Assert.Equal(new Rgb24(0, 0, 0), png[8, 0]);        // image 1, clamped top-left pixel (2×2 block)
        Assert.Equal(new Rgb24(0, 0, 0), png[9, 1]);
        Assert.Equal(new Rgb24(255, 255, 255), png[10, 0]); // image 1, white
        Assert.Equal(ImageGrid.Background, png[0, 4]);      // padding row
        Assert.Equal(new Rgb24(255, 255, 255), png[0, 6]);  // image 2 (5 → clamped white)
        Assert.Equal(new Rgb24(128, 128, 128), png[4, 8]);  // image 2, pixel (1, 2) scaled ×2
        Assert.Equal(new Rgb24(128, 128, 128), png[5, 9]);
        Assert.Equal(ImageGrid.Background, png[8, 6]);      // empty last cell
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "sub"), "*.tmp"));
    }

    [Fact]
    public void WritesRgbAndOverwritesAtomically()
    {
        using var images = torch.zeros(2, 3, 4, 4);
        images[0, 0] = torch.tensor(1f);   // red
        images[0, 1] = torch.tensor(-1f);
        images[0, 2] = torch.tensor(-1f);
        images[1, 0] = torch.tensor(-1f);  // blue-ish: (0, 128, 255)
        images[1, 2] = torch.tensor(1f);
        var path = Path.Combine(_dir, "rgb.png");
        File.WriteAllText(path, "old");
        ImageGrid.SavePng(images, columns: 8, path);

        using var png = Image.Load<Rgb24>(path);
        Assert.Equal((4 + 2 + 4, 4), (png.Width, png.Height));
        Assert.Equal(new Rgb24(255, 0, 0), png[3, 3]);
        Assert.Equal(new Rgb24(0, 128, 255), png[6, 0]);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void RowLabelsGoInALeftColumnWithInk()
    {
        using var images = torch.ones(4, 1, 28, 28).neg();
        var labels = new[] { "T-shirt/top", "Bag" };
        var path = Path.Combine(_dir, "labels.png");
        ImageGrid.SavePng(images, columns: 2, path, scale: 1, rowLabels: labels);

        int labelW = ImageGrid.LabelColumnWidth(11, 28);
        Assert.Equal(2 + (11 * 6 - 1) + 4, labelW);
        using var png = Image.Load<Rgb24>(path);
        Assert.Equal(labelW + 28 + 2 + 28, png.Width);
        Assert.Equal(28 + 2 + 28, png.Height);
        Assert.Equal(new Rgb24(0, 0, 0), png[labelW, 0]);           // first cell starts right after the label column
        Assert.Equal(ImageGrid.Background, png[labelW - 1, 0]);

        int Ink(int y0, int y1)
        {
            int ink = 0;
            for (int y = y0; y < y1; y++)
                for (int x = 0; x < labelW; x++)
                    if (png[x, y].Equals(ImageGrid.LabelColor)) ink++;
            return ink;
        }
        Assert.True(Ink(0, 28) > 40);
        Assert.True(Ink(30, 58) > 20);
        Assert.True(Ink(0, 28) > Ink(30, 58)); // the longer label has more ink
        // "T" at (2, 10): top bar across the glyph, stem in the middle column. Glyph rows start at (28 − 7) / 2 = 10.
        for (int x = 0; x < 5; x++) Assert.Equal(ImageGrid.LabelColor, png[2 + x, 10]);
        Assert.Equal(ImageGrid.LabelColor, png[4, 16]);
        Assert.Equal(ImageGrid.Background, png[2, 16]);
    }

    [Fact]
    public void RejectsBadInputs()
    {
        var path = Path.Combine(_dir, "x.png");
        using var two = torch.zeros(2, 2, 4, 4);
        Assert.Throws<ArgumentException>(() => ImageGrid.SavePng(two, 2, path));
        using var three = torch.zeros(1, 4, 4);
        Assert.Throws<ArgumentException>(() => ImageGrid.SavePng(three, 2, path));
        using var ok = torch.zeros(2, 1, 4, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageGrid.SavePng(ok, 0, path));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageGrid.SavePng(ok, 2, path, scale: 0));
        Assert.Throws<ArgumentException>(() => ImageGrid.SavePng(ok, 2, path, rowLabels: new[] { "a", "b" }));
        using var huge = torch.zeros(1, 1, 4096, 4096);
        Assert.Throws<ArgumentException>(() => ImageGrid.SavePng(huge, 1, path, scale: 16));
        Assert.False(File.Exists(path));
    }
}
