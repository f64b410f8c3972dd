using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace McDit.Tests;

/// <summary>A torchvision-layout folder of seeded random 8×8 RGB images in two classes (<c>even</c>, <c>odd</c>), for
/// tiny CLI runs. Linked into McDit.Reliability.Tests as well.</summary>
internal static class RandomImageFolder
{
    /// <summary>Writes <paramref name="count"/> images to <paramref name="folder"/>; image i goes to class i mod 2.</summary>
    public static string Write(string folder, int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var dir = Path.Combine(folder, i % 2 == 0 ? "even" : "odd");
            Directory.CreateDirectory(dir);
            using var image = new Image<Rgb24>(8, 8);
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    image[x, y] = new Rgb24((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            image.SaveAsPng(Path.Combine(dir, $"{i}.png"));
        }
        return folder;
    }
}
