using McDit.MLNet.Data;
using Microsoft.ML;
using Xunit;
using static McDit.MLNet.Tests.Data.LoaderTestKit;

namespace McDit.MLNet.Tests.Data;

public sealed class Cifar10LoaderTests : TempFolderTest
{
    const int Record = 3073, Plane = 1024;

    /// <summary>Record r: label labels[r]; pixel byte k (after the label) = (7·r + k) mod 256.</summary>
    static byte[] Records(params byte[] labels)
    {
        var data = new byte[labels.Length * Record];
        for (int r = 0; r < labels.Length; r++)
        {
            data[r * Record] = labels[r];
            for (int k = 0; k < 3 * Plane; k++) data[r * Record + 1 + k] = (byte)((7 * r + k) % 256);
        }
        return data;
    }

    static float[] ExpectedPixels(int r) => Enumerable.Range(0, 3 * Plane).Select(k => (byte)((7 * r + k) % 256) / 255f).ToArray();

    [Fact]
    public void LoadsABatchFileWithPlanesLabelsAndStandardNames()
    {
        var file = Path.Combine(Dir, "test_batch.bin");
        File.WriteAllBytes(file, Records(3, 9, 0));
        var view = new MLContext().McDit().Data.LoadCifar10(file);

        AssertSchema(view, 3, 32, 32, "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck");
        Assert.Equal(3L, view.GetRowCount());
        var rows = ReadAll(view);
        Assert.Equal(new uint[] { 4, 10, 1 }, rows.Select(r => r.Key));
        for (int r = 0; r < 3; r++)
        {
            Assert.Equal(ExpectedPixels(r), rows[r].Pixels); // R plane, G plane, B plane: the file order is CHW
            Assert.All(rows[r].Pixels, v => Assert.InRange(v, 0f, 1f));
        }
        AssertShuffleVisitsEveryRowOnce(view);
    }

    [Fact]
    public void FolderSplitsSpanSeveralFilesAndReadNamesFromMeta()
    {
        var folder = Path.Combine(Dir, "cifar-10-batches-bin");
        Directory.CreateDirectory(folder);
        for (int i = 1; i <= 5; i++) File.WriteAllBytes(Path.Combine(folder, $"data_batch_{i}.bin"), Records((byte)i, (byte)(i - 1)));
        File.WriteAllBytes(Path.Combine(folder, "test_batch.bin"), Records(7));
        File.WriteAllLines(Path.Combine(folder, "batches.meta.txt"), Enumerable.Range(0, 10).Select(i => $"c{i}").Append(""));
        var data = new MLContext().McDit().Data;

        var train = data.LoadCifar10(Dir); // the folder holding cifar-10-batches-bin
        Assert.Equal(10L, train.GetRowCount());
        AssertSchema(train, 3, 32, 32, Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray());
        var rows = ReadAll(train);
        Assert.Equal(new uint[] { 2, 1, 3, 2, 4, 3, 5, 4, 6, 5 }, rows.Select(r => r.Key));
        Assert.Equal(ExpectedPixels(1), rows[9].Pixels); // second record of data_batch_5
        AssertShuffleVisitsEveryRowOnce(train);

        var test = data.LoadCifar10(folder, Cifar10Split.Test);
        Assert.Equal(1L, test.GetRowCount());

        File.Delete(Path.Combine(folder, "data_batch_4.bin"));
        var e = Assert.Throws<FileNotFoundException>(() => data.LoadCifar10(folder));
        Assert.Contains("data_batch_4.bin", e.Message);
    }

    [Fact]
    public void TruncatedFileIsAnErrorNamingIt()
    {
        var file = Path.Combine(Dir, "data_batch_1.bin");
        File.WriteAllBytes(file, Records(1, 2, 3)[..(3 * Record - 5)]);
        var e = Assert.Throws<InvalidDataException>(() => new MLContext().McDit().Data.LoadCifar10(file));
        Assert.Contains(file, e.Message);
        Assert.Contains("3073", e.Message);
    }

    [Fact]
    public void LabelOutOfRangeIsAnErrorNamingFileAndRecord()
    {
        var file = Path.Combine(Dir, "test_batch.bin");
        File.WriteAllBytes(file, Records(1, 12));
        var view = new MLContext().McDit().Data.LoadCifar10(file);
        var e = Assert.Throws<InvalidDataException>(() => ReadAll(view));
        Assert.Contains(file, e.Message);
        Assert.Contains("record 1", e.Message);
    }
}
