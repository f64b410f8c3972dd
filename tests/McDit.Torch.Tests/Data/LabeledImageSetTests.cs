using McDit.Torch.Data;
using McDit.Torch.Runtime;
using TorchSharp;
using Xunit;

namespace McDit.Torch.Tests.Data;

public class LabeledImageSetTests
{
    static LabeledImageSet Small(int count, int side = 28)
    {
        var pixels = new byte[count * side * side];
        for (int i = 0; i < count; i++)
            for (int p = 0; p < side * side; p++)
                pixels[i * side * side + p] = (byte)((p + i) % 256);
        var labels = Enumerable.Range(0, count).Select(i => i % 4).ToArray();
        return new LabeledImageSet(pixels, labels, 1, side, side, new[] { "a", "b", "c", "d" });
    }

    [Fact]
    public void ScalesToMinusOneOne()
    {
        TorchBackend.EnsureInitialized();
        var set = new LabeledImageSet(new byte[] { 0, 255, 127, 128 }, new[] { 0 }, 1, 2, 2, new[] { "x" });
        using var x = set.ToTensor();
        Assert.Equal(new long[] { 1, 1, 2, 2 }, x.shape);
        var v = x.data<float>().ToArray();
        Assert.Equal(-1f, v[0]);
        Assert.Equal(1f, v[1]);
        Assert.Equal(127 / 127.5f - 1f, v[2], 6);
        Assert.Equal(128 / 127.5f - 1f, v[3], 6);
    }

    [Fact]
    public void PadsTwentyEightToThirtyTwoWithBlack()
    {
        TorchBackend.EnsureInitialized();
        var set = Small(3);
        using var x = set.ToTensor(FashionMnist.PaddingTo32);
        Assert.Equal(new long[] { 3, 1, 32, 32 }, x.shape);
        using var inner = x[.., .., 2..30, 2..30];
        using var plain = set.ToTensor();
        using var same = inner.equal(plain).all();
        Assert.True(same.item<bool>());
        using var border = x.clone();
        using var _ = border[.., .., 2..30, 2..30].fill_(5f);
        using var isBorder = border.ne(5f);
        using var borderValues = x.masked_select(isBorder);
        Assert.Equal(3 * (32 * 32 - 28 * 28), borderValues.numel());
        Assert.True(borderValues.eq(-1f).all().item<bool>());
    }

    [Fact]
    public void SelectedIndicesComeInOrder()
    {
        TorchBackend.EnsureInitialized();
        var set = Small(5, side: 4);
        using var x = set.ToTensor(new[] { 3, 1, 3 });
        using var y = set.LabelsToTensor(new[] { 3, 1, 3 });
        Assert.Equal(new long[] { 3, 1, 3 }, y.data<long>().ToArray());
        Assert.Equal((3 / 127.5f) - 1f, x[0, 0, 0, 0].item<float>(), 6);
        Assert.Equal((1 / 127.5f) - 1f, x[1, 0, 0, 0].item<float>(), 6);
        Assert.Throws<ArgumentOutOfRangeException>(() => set.ToTensor(new[] { 5 }));
    }

    [Fact]
    public void ConstructorValidates()
    {
        Assert.Throws<ArgumentException>(() => new LabeledImageSet(new byte[3], new[] { 0 }, 1, 2, 2, new[] { "a" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LabeledImageSet(new byte[4], new[] { 1 }, 1, 2, 2, new[] { "a" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LabeledImageSet(new byte[8], new[] { 0 }, 2, 2, 2, new[] { "a" }));
    }
}
