using Microsoft.ML;

namespace McDit.MLNet.Internal;

/// <summary>
/// A row cursor over a view that can read any row by index: it visits rows 0..count−1 in order, or in the order of a
/// given permutation (how McDit's loaders and the latent cache shuffle). Subclasses read the columns of <see cref="Row"/>.
/// </summary>
internal abstract class IndexedRowCursor : DataViewRowCursor
{
    private readonly long _count;
    private readonly long[]? _order;
    private long _position = -1, _row = -1;
    private bool _done, _disposed;

    /// <summary>A cursor over <paramref name="count"/> rows, in the order of <paramref name="order"/> when given.</summary>
    protected IndexedRowCursor(long count, long[]? order)
    {
        _count = count;
        _order = order;
    }

    /// <inheritdoc />
    public override long Position => _position;

    /// <inheritdoc />
    public override long Batch => 0;

    /// <inheritdoc />
    public override bool MoveNext()
    {
        if (_done || _disposed) return false;
        _position++;
        if (_position >= _count)
        {
            _done = true;
            _row = -1;
            return false;
        }
        _row = _order is null ? _position : _order[_position];
        return true;
    }

    /// <summary>The index of the row under the cursor; throws before the first MoveNext and after the last row.</summary>
    protected long Row => _row >= 0 ? _row : throw new InvalidOperationException(_done
        ? "The cursor has moved past the last row; there is no current row to read."
        : "The cursor is not on a row yet; call MoveNext first.");

    /// <summary>Releases what the subclass opened (readers, streams); called once.</summary>
    protected abstract void ReleaseResources();

    /// <inheritdoc />
    protected sealed override void Dispose(bool disposing)
    {
        if (_disposed) return;
        _disposed = true;
        _row = -1;
        if (disposing) ReleaseResources();
        base.Dispose(disposing);
    }
}
