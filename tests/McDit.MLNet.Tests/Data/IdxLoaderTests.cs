using McDit.MLNet.Data;
using McDit.MLNet.Tests.Trainers;
using McDit.Torch.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Xunit;
using static McDit.MLNet.Tests.Data.LoaderTestKit;

namespace McDit.MLNet.Tests.Data;

public sealed class IdxLoaderTests : TempFolderTest
{
    // 5 images of 3×4 pixels; pixel value = 10·image + position, labels 2 0 1 2 1.
    static readonly byte[] Pixels = Enumerable.Range(0, 5 * 12).Select(i => (byte)(10 * (i / 12) + i % 12)).ToArray();
    static readonly byte[] Labels = { 2, 0, 1, 2, 1 };

    (string Images, string Labels) Write(bool gzip, byte[]? labels = null)
    {
        var ext = gzip ? ".gz" : "";
        var images = Path.Combine(Dir, "images-idx3-ubyte" + ext);
        var labelPath = Path.Combine(Dir, "labels-idx1-ubyte" + ext);
        IdxWriter.WriteImages(images, Pixels, 5, 3, 4, gzip);
        IdxWriter.WriteLabels(labelPath, labels ?? Labels, gzip);
        return (images, labelPath);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LoadsIdxFilesWithSchemaValuesAndNames(bool gzip)
    {
        var (images, labels) = Write(gzip);
        var view = new MLContext().McDit().Data.LoadIdx(images, labels, new[] { "zero", "one", "two" });

        AssertSchema(view, 1, 3, 4, "zero", "one", "two");
        Assert.Equal(5L, view.GetRowCount());
        Assert.Equal(new[] { "zero", "one", "two" }, view.ClassNames);
        var rows = ReadAll(view);
        Assert.Equal(5, rows.Count);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal((ulong)i, rows[i].Id);
            Assert.Equal(Labels[i] + 1u, rows[i].Key); // key raw value = class + 1
            Assert.Equal(Pixels.Skip(12 * i).Take(12).Select(b => b / 255f), rows[i].Pixels);
            Assert.All(rows[i].Pixels, v => Assert.InRange(v, 0f, 1f));
        }
        AssertShuffleVisitsEveryRowOnce(view);
    }

    [Fact]
    public void NamesClassesByLabelWhenNoNamesAreGiven_AndMapKeyToValueUsesThem()
    {
        var (images, labels) = Write(gzip: false);
        var ml = new MLContext();
        var view = ml.McDit().Data.LoadIdx(images, labels);
        AssertSchema(view, 1, 3, 4, "0", "1", "2");
        var mapped = ml.Transforms.Conversion.MapKeyToValue("LabelName", "Label").Fit(view).Transform(view);
        Assert.Equal(new[] { "2", "0", "1", "2", "1" }, mapped.GetColumn<string>("LabelName").ToArray());
    }

    [Fact]
    public void ErrorsNameTheFile()
    {
        var (images, labels) = Write(gzip: true, labels: new byte[] { 0, 1, 2 });
        var ml = new MLContext();
        var e = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadIdx(images, labels));
        Assert.Contains(labels, e.Message);

        var (images2, labels2) = Write(gzip: false, labels: new byte[] { 0, 1, 5, 0, 1 });
        e = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadIdx(images2, labels2, new[] { "a", "b", "c" }));
        Assert.Contains(labels2, e.Message);
        Assert.Contains("label 5", e.Message);

        var bad = Path.Combine(Dir, "bad");
        File.WriteAllBytes(bad, new byte[] { 0, 0, 8, 3, 0 });
        e = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadIdx(bad, labels2));
        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public void AsImageGivesGreyMLImages()
    {
        var (images, labels) = Write(gzip: false);
        var view = new MLContext().McDit().Data.LoadIdx(images, labels, asImage: true);
        var type = Assert.IsType<ImageDataViewType>(view.Schema["Image"].Type);
        Assert.Equal((3, 4), (type.Height, type.Width));
        using var cursor = view.GetRowCursor(view.Schema);
        var getter = cursor.GetGetter<MLImage>(view.Schema["Image"]);
        MLImage image = null!;
        Assert.True(cursor.MoveNext());
        Assert.True(cursor.MoveNext());
        getter(ref image);
        Assert.Equal(MLPixelFormat.Bgra32, image.PixelFormat);
        var px = image.Pixels;
        for (int i = 0; i < 12; i++)
            Assert.Equal(new byte[] { Pixels[12 + i], Pixels[12 + i], Pixels[12 + i], 255 }, px.Slice(4 * i, 4).ToArray());
        image.Dispose();
    }

    [Fact]
    public void EmbeddedFashionMnistHas6000RowsAnd10NamedClasses()
    {
        var data = new MLContext().McDit().Data;
        var train = data.LoadFashionMnist();
        Assert.Equal(6000L, train.GetRowCount());
        AssertSchema(train, 1, 28, 28, FashionMnist.ClassNames.ToArray());
        Assert.Equal(1000L, data.LoadFashionMnist(FashionMnistSplit.HeldOut).GetRowCount());

        // The first rows match the embedded set itself, scaled to [0, 1].
        var set = FashionMnist.LoadEmbedded();
        using var cursor = train.GetRowCursor(train.Schema);
        var image = cursor.GetGetter<VBuffer<float>>(train.Schema["Image"]);
        var label = cursor.GetGetter<uint>(train.Schema["Label"]);
        VBuffer<float> pixels = default;
        uint key = 0;
        for (int i = 0; i < 3; i++)
        {
            Assert.True(cursor.MoveNext());
            image(ref pixels);
            label(ref key);
            Assert.Equal(set.GetImage(i).ToArray().Select(b => b / 255f), pixels.DenseValues());
            Assert.Equal((uint)set.Labels[i] + 1, key);
        }

        var e = Assert.Throws<DirectoryNotFoundException>(() => data.LoadFashionMnist(folder: Path.Combine(Dir, "missing")));
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void FashionMnistFromAFolderOfOriginalFileNames()
    {
        IdxWriter.WriteImages(Path.Combine(Dir, "t10k-images-idx3-ubyte.gz"), Pixels, 5, 3, 4, gzip: true);
        IdxWriter.WriteLabels(Path.Combine(Dir, "t10k-labels-idx1-ubyte.gz"), Labels, gzip: true);
        var view = new MLContext().McDit().Data.LoadFashionMnist(FashionMnistSplit.HeldOut, Dir);
        AssertSchema(view, 1, 3, 4, FashionMnist.ClassNames.ToArray());
        Assert.Equal(5L, view.GetRowCount());
    }

    [Fact]
    public void LoadsTheInstalledFullFashionMnistWhenPresent()
    {
        var folder = McDitDataCatalog.DebianFashionMnistFolder;
        if (!File.Exists(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"))) return; // package dataset-fashion-mnist not installed
        var view = new MLContext().McDit().Data.LoadFashionMnist(FashionMnistSplit.HeldOut, folder);
        Assert.Equal(10_000L, view.GetRowCount());
        AssertSchema(view, 1, 28, 28, FashionMnist.ClassNames.ToArray());
    }

    [Fact]
    public void EmbeddedSubsetTrainsTheDiffusionTransformerEndToEnd()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.TakeRows(ml.McDit().Data.LoadFashionMnist(), 8);
        var options = McDitTestData.Options(steps: 2);
        options.SamplingSteps = 1;
        var model = ml.McDit().Trainers.DiffusionTransformer(options).Fit(data);
        Assert.Equal(2, model.TrainedSteps);
        Assert.Equal(10, model.NumberOfClasses);
        Assert.Equal(FashionMnist.ClassNames, model.ClassNames);
    }
}
