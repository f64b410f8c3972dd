using McDit.Torch.Data;

namespace McDit.MLNet.Data;

/// <summary>
/// Rows of a labelled image set with random access: row i's pixels (uint8, CHW), class and optional file path.
/// Each cursor opens its own <see cref="ImageRowReader"/>, so readers keep per-cursor state (file handles, buffers)
/// and sources stay immutable and safe to share between cursors.
/// </summary>
abstract class ImageRowSource
{
    protected ImageRowSource(int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        Channels = channels;
        Height = height;
        Width = width;
        ClassNames = classNames.ToArray();
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int ImageSize => Channels * Height * Width;
    public IReadOnlyList<string> ClassNames { get; }
    public abstract int Count { get; }
    /// <summary>True when rows have a file path (the <c>Path</c> column).</summary>
    public virtual bool HasPath => false;
    /// <summary>Opens a reader for one cursor.</summary>
    public abstract ImageRowReader OpenReader();
}

/// <summary>Per-cursor access to the rows of an <see cref="ImageRowSource"/>.</summary>
abstract class ImageRowReader : IDisposable
{
    /// <summary>Writes the C·H·W pixels of row <paramref name="row"/> (0 = black, 255 = white).</summary>
    public abstract void ReadPixels(int row, Span<byte> destination);
    /// <summary>The 0-based class of row <paramref name="row"/>.</summary>
    public abstract int ReadLabel(int row);
    /// <summary>The file the row came from, or empty.</summary>
    public virtual string ReadPath(int row) => "";
    public virtual void Dispose() { }
}

/// <summary>Rows of an in-memory <see cref="LabeledImageSet"/> (IDX files, the embedded Fashion-MNIST subset).</summary>
sealed class LabeledImageSetSource(LabeledImageSet set)
    : ImageRowSource(set.Channels, set.Height, set.Width, set.ClassNames)
{
    public override int Count => set.Count;

    public override ImageRowReader OpenReader() => new Reader(set);

    sealed class Reader(LabeledImageSet set) : ImageRowReader
    {
        public override void ReadPixels(int row, Span<byte> destination) => set.GetImage(row).CopyTo(destination);
        public override int ReadLabel(int row) => set.Labels[row];
    }
}
