using System.Collections.ObjectModel;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace McDit.MLNet.Data;

/// <summary>A file an image-folder loader left out (<see cref="ImageFolderOptions.SkipUnreadable"/>), and why.</summary>
/// <param name="Path">The file.</param>
/// <param name="Reason">Why it was not read (too large, not an image, corrupt data …).</param>
public sealed record SkippedImageFile(string Path, string Reason);

/// <summary>
/// A labelled image set as an ML.NET <see cref="IDataView"/>, made by the loaders of <c>mlContext.McDit().Data</c>.
/// </summary>
/// <remarks>
/// <para>Columns:</para>
/// <list type="bullet">
/// <item><c>Image</c>: a known-size <see cref="float"/> vector with dimensions [C, H, W] (channel planes, rows
/// top to bottom), values in [0, 1] (0 = black, 1 = white): the trainer's default input range
/// (<c>InputMinimum</c> 0, <c>InputMaximum</c> 1). Loaded with <c>asImage: true</c> it is an ML.NET image column
/// (<see cref="MLImage"/>, Bgra32, grey images with three equal channels) of H×W instead.</item>
/// <item><c>Label</c>: a key over the classes (<see cref="uint"/> raw value = class index + 1), with the class names as
/// <c>KeyValues</c> annotations, so <c>MapKeyToValue</c> and the trained model's <c>ClassNames</c> see them.</item>
/// <item><c>Path</c> (image folders only): the image file, as text.</item>
/// </list>
/// <para>The view streams: pixels are read (and, for image files, decoded) when a cursor asks for them, and only the
/// current row is held per cursor. Every row can be read by index, so the view shuffles itself
/// (<see cref="CanShuffle"/>: a random cursor visits a random permutation of the rows) and knows its row count.
/// The row id of a row is its index in the unshuffled order.</para>
/// </remarks>
public sealed class LabeledImageDataView : IDataView
{
    /// <summary>Name of the image column.</summary>
    public const string ImageColumnName = "Image";
    /// <summary>Name of the label column.</summary>
    public const string LabelColumnName = "Label";
    /// <summary>Name of the file path column (image folders only).</summary>
    public const string PathColumnName = "Path";

    readonly ImageRowSource _source;

    internal LabeledImageDataView(ImageRowSource source, bool asImage, IReadOnlyList<SkippedImageFile>? skipped = null)
    {
        _source = source;
        AsImage = asImage;
        SkippedFiles = new ReadOnlyCollection<SkippedImageFile>((skipped ?? Array.Empty<SkippedImageFile>()).ToArray());
        ClassNames = new ReadOnlyCollection<string>(source.ClassNames.ToArray());
        Schema = BuildSchema(source, asImage);
    }

    static DataViewSchema BuildSchema(ImageRowSource source, bool asImage)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(ImageColumnName, asImage
            ? new ImageDataViewType(source.Height, source.Width)
            : new VectorDataViewType(NumberDataViewType.Single, source.Channels, source.Height, source.Width));
        int classes = source.ClassNames.Count;
        var names = source.ClassNames.Select(n => n.AsMemory()).ToArray();
        var annotations = new DataViewSchema.Annotations.Builder();
        annotations.Add("KeyValues", new VectorDataViewType(TextDataViewType.Instance, classes),
            (ref VBuffer<ReadOnlyMemory<char>> value) => value = new VBuffer<ReadOnlyMemory<char>>(classes, (ReadOnlyMemory<char>[])names.Clone()));
        builder.AddColumn(LabelColumnName, new KeyDataViewType(typeof(uint), classes), annotations.ToAnnotations());
        if (source.HasPath) builder.AddColumn(PathColumnName, TextDataViewType.Instance);
        return builder.ToSchema();
    }

    /// <summary>The columns: <c>Image</c>, <c>Label</c> and, for image folders, <c>Path</c>.</summary>
    public DataViewSchema Schema { get; }

    /// <summary>True: a cursor asked for with a <see cref="Random"/> visits the rows in a random order.</summary>
    public bool CanShuffle => true;

    /// <summary>Number of rows (images).</summary>
    public int Count => _source.Count;

    /// <summary>Channels C of the images (1 grey, 3 RGB).</summary>
    public int Channels => _source.Channels;

    /// <summary>Image height H.</summary>
    public int Height => _source.Height;

    /// <summary>Image width W.</summary>
    public int Width => _source.Width;

    /// <summary>True when the image column holds ML.NET images rather than float vectors.</summary>
    public bool AsImage { get; }

    /// <summary>The class names, by class index (the key values of the <c>Label</c> column).</summary>
    public ReadOnlyCollection<string> ClassNames { get; }

    /// <summary>Files left out while loading (image folders with <see cref="ImageFolderOptions.SkipUnreadable"/>); empty otherwise.</summary>
    public ReadOnlyCollection<SkippedImageFile> SkippedFiles { get; }

    /// <summary>Number of files left out while loading.</summary>
    public int SkippedCount => SkippedFiles.Count;

    /// <summary>The number of rows; always known.</summary>
    public long? GetRowCount() => _source.Count;

    /// <summary>A cursor over the rows, in order, or in a random order drawn from <paramref name="rand"/>.</summary>
    /// <param name="columnsNeeded">The columns the cursor reads; others cannot be read (and cost nothing).</param>
    /// <param name="rand">Null for the stored order; otherwise the permutation is drawn from it.</param>
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            if (column.Index < 0 || column.Index >= Schema.Count || Schema[column.Index].Name != column.Name)
                throw new ArgumentOutOfRangeException(nameof(columnsNeeded),
                    $"Column '{column.Name}' (index {column.Index}) does not belong to this data view; its columns are {string.Join(", ", Schema.Select(c => $"'{c.Name}'"))}.");
            active[column.Index] = true;
        }
        long[]? order = rand is null ? null : Array.ConvertAll(Permutation(_source.Count, rand), i => (long)i);
        return new Cursor(this, active, order);
    }

    /// <summary>One cursor (see <see cref="GetRowCursor"/>); the rows are not split between cursors.</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    static int[] Permutation(int count, Random rand)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        for (int i = count - 1; i > 0; i--)
        {
            int j = rand.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    sealed class Cursor : McDit.MLNet.Internal.IndexedRowCursor
    {
        readonly LabeledImageDataView _view;
        readonly bool[] _active;
        readonly ImageRowReader _reader;
        readonly byte[] _pixels;
        int _pixelsRow = -1;

        public Cursor(LabeledImageDataView view, bool[] active, long[]? order) : base(view._source.Count, order)
        {
            _view = view;
            _active = active;
            _reader = view._source.OpenReader();
            _pixels = new byte[view._source.ImageSize];
        }

        public override DataViewSchema Schema => _view.Schema;

        new int Row => (int)base.Row;

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId value) => value = new DataViewRowId((ulong)Row, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
                throw new InvalidOperationException(
                    $"Column '{column.Name}' is not active in this cursor; include it in the columns passed to GetRowCursor.");
            Delegate getter = Schema[column.Index].Name switch
            {
                ImageColumnName when _view.AsImage => (ValueGetter<MLImage>)GetImage,
                ImageColumnName => (ValueGetter<VBuffer<float>>)GetVector,
                LabelColumnName => (ValueGetter<uint>)GetLabel,
                _ => (ValueGetter<ReadOnlyMemory<char>>)GetPath,
            };
            return getter as ValueGetter<TValue> ?? throw new InvalidOperationException(
                $"Column '{column.Name}' has type {column.Type} (values of {column.Type.RawType.Name}); a getter of {typeof(TValue).Name} was asked for.");
        }

        ReadOnlySpan<byte> Pixels()
        {
            int row = Row;
            if (_pixelsRow != row)
            {
                _pixelsRow = -1;
                _reader.ReadPixels(row, _pixels);
                _pixelsRow = row;
            }
            return _pixels;
        }

        void GetVector(ref VBuffer<float> value)
        {
            var pixels = Pixels();
            var editor = VBufferEditor.Create(ref value, pixels.Length);
            var values = editor.Values;
            for (int i = 0; i < pixels.Length; i++) values[i] = pixels[i] / 255f;
            value = editor.Commit();
        }

        void GetImage(ref MLImage value)
        {
            var pixels = Pixels();
            var source = _view._source;
            int plane = source.Height * source.Width;
            var bgra = new byte[plane * 4];
            for (int i = 0; i < plane; i++)
            {
                byte r = pixels[i], g = source.Channels == 3 ? pixels[plane + i] : r, b = source.Channels == 3 ? pixels[2 * plane + i] : r;
                bgra[4 * i] = b;
                bgra[4 * i + 1] = g;
                bgra[4 * i + 2] = r;
                bgra[4 * i + 3] = 255;
            }
            // As ML.NET's own image loader does: the previous image of this getter is released.
            value?.Dispose();
            value = MLImage.CreateFromPixels(source.Width, source.Height, MLPixelFormat.Bgra32, bgra);
        }

        void GetLabel(ref uint value) => value = (uint)_reader.ReadLabel(Row) + 1;

        void GetPath(ref ReadOnlyMemory<char> value) => value = _reader.ReadPath(Row).AsMemory();

        protected override void ReleaseResources() => _reader.Dispose();
    }
}
