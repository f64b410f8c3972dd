using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;

namespace McDit.MLNet.Tests.Data;

/// <summary>Reads whole loader views back, and a temporary folder per test class.</summary>
static class LoaderTestKit
{
    public sealed record Row(ulong Id, uint Key, float[] Pixels, string Path);

    /// <summary>Every row through one cursor over all columns, in order or shuffled by <paramref name="seed"/>.</summary>
    public static List<Row> ReadAll(IDataView view, int? seed = null)
    {
        var rows = new List<Row>();
        using var cursor = view.GetRowCursor(view.Schema, seed is { } s ? new Random(s) : null);
        var id = cursor.GetIdGetter();
        var label = cursor.GetGetter<uint>(view.Schema["Label"]);
        var image = cursor.GetGetter<VBuffer<float>>(view.Schema["Image"]);
        var pathColumn = view.Schema.GetColumnOrNull("Path");
        ValueGetter<ReadOnlyMemory<char>>? path = pathColumn is { } p ? cursor.GetGetter<ReadOnlyMemory<char>>(p) : null;
        DataViewRowId rowId = default;
        uint key = 0;
        VBuffer<float> pixels = default;
        ReadOnlyMemory<char> text = default;
        while (cursor.MoveNext())
        {
            id(ref rowId);
            label(ref key);
            image(ref pixels);
            path?.Invoke(ref text);
            rows.Add(new Row(rowId.Low, key, pixels.DenseValues().ToArray(), text.ToString()));
        }
        return rows;
    }

    public static string[] KeyNames(IDataView view, string column = "Label")
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        view.Schema[column].Annotations.GetValue("KeyValues", ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>Checks the standard schema: Image [C, H, W] floats, Label key over the class names.</summary>
    public static void AssertSchema(IDataView view, int channels, int height, int width, params string[] classNames)
    {
        var image = Assert.IsType<VectorDataViewType>(view.Schema["Image"].Type);
        Assert.Equal(NumberDataViewType.Single, image.ItemType);
        Assert.Equal(new[] { channels, height, width }, image.Dimensions.ToArray());
        var key = Assert.IsType<KeyDataViewType>(view.Schema["Label"].Type);
        Assert.Equal((ulong)classNames.Length, key.Count);
        Assert.Equal(classNames, KeyNames(view));
    }

    /// <summary>A shuffled cursor visits every row exactly once, in another order than the stored one (for 3+ rows).</summary>
    public static void AssertShuffleVisitsEveryRowOnce(IDataView view)
    {
        Assert.True(view.CanShuffle);
        var ordered = ReadAll(view);
        var seen = new HashSet<ulong>();
        bool permuted = false;
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var shuffled = ReadAll(view, seed);
            Assert.Equal(ordered.Count, shuffled.Count);
            Assert.Equal(ordered.Select(r => r.Id).Order(), shuffled.Select(r => r.Id).Order());
            foreach (var row in shuffled)
            {
                var same = ordered[(int)row.Id];
                Assert.Equal(same.Key, row.Key);
                Assert.Equal(same.Pixels, row.Pixels);
            }
            permuted |= !shuffled.Select(r => r.Id).SequenceEqual(ordered.Select(r => r.Id));
        }
        Assert.True(permuted || ordered.Count < 3);
    }
}

/// <summary>A temporary folder, removed when the test class is done.</summary>
public abstract class TempFolderTest : IDisposable
{
    protected readonly string Dir = Path.Combine(Path.GetTempPath(), "mcdit-data-" + Guid.NewGuid().ToString("N"));

    protected TempFolderTest() => Directory.CreateDirectory(Dir);

    public void Dispose()
    {
        if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }
}
