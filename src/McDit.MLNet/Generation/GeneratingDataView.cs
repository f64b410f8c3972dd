using McDit.MLNet.Internal;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.MLNet.Generation;

/// <summary>
/// The output of <see cref="McDitModel.Transform"/>: the input's columns plus the generated image and pixel columns,
/// generated in batches.
/// </summary>
/// <remarks>
/// A cursor passes the input's columns through from an input cursor. When a generated column of a row is read and
/// that row is not in the current batch, a second input cursor over the same data (reading only the label and seed
/// columns, in the same unshuffled order) is moved to that row and reads up to <c>BatchSize</c> rows from there; one
/// sampler run then generates them all and the results are served as the main cursor reaches those rows. Nothing is
/// generated for rows whose generated columns are never read, and the data is never held in memory beyond one batch.
/// </remarks>
sealed class GeneratingDataView : IDataView
{
    readonly McDitModel _model;
    readonly IDataView _input;
    readonly int _labelIndex, _seedIndex, _imageIndex, _pixelsIndex;

    public GeneratingDataView(McDitModel model, IDataView input)
    {
        _model = model;
        _input = input;
        (_labelIndex, _seedIndex) = model.CheckInputColumns(input.Schema);
        Schema = model.GetOutputSchema(input.Schema);
        _imageIndex = Schema[model.GeneratedImageColumnName].Index;
        _pixelsIndex = Schema[model.GeneratedPixelsColumnName].Index;
    }

    public DataViewSchema Schema { get; }

    /// <summary>False: the rows' seeds default to their positions, so the order is part of the result.</summary>
    public bool CanShuffle => false;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = _input.Schema.Count;
        var inputColumns = needed.Where(i => i < inputCount && i != _imageIndex && i != _pixelsIndex)
            .Select(i => _input.Schema[i]).ToList();
        return new Cursor(this, _input.GetRowCursor(inputColumns), needed);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    sealed class Cursor : DataViewRowCursor
    {
        readonly GeneratingDataView _parent;
        readonly DataViewRowCursor _main;
        readonly HashSet<int> _active;
        DataViewRowCursor? _ahead;
        Func<long>? _aheadLabel, _aheadSeed;
        long _batchStart = -1;
        int _batchCount;
        float[] _batch = Array.Empty<float>();
        readonly int _sampleSize;

        public Cursor(GeneratingDataView parent, DataViewRowCursor main, HashSet<int> active)
        {
            _parent = parent;
            _main = main;
            _active = active;
            _sampleSize = parent._model.ImageSize;
        }

        public override DataViewSchema Schema => _parent.Schema;
        public override long Position => _main.Position;
        public override long Batch => _main.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();
        public override bool MoveNext() => _main.MoveNext();
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was made.");
            if (column.Index == _parent._imageIndex)
            {
                ValueGetter<MLImage> image = (ref MLImage dst) => dst = _parent._model.ToImage(Current());
                return image as ValueGetter<TValue>
                    ?? throw new InvalidOperationException($"Column '{column.Name}' holds MLImage, not {typeof(TValue).Name}.");
            }
            if (column.Index == _parent._pixelsIndex)
            {
                ValueGetter<VBuffer<float>> pixels = (ref VBuffer<float> dst) => _parent._model.CopyPixels(Current(), ref dst);
                return pixels as ValueGetter<TValue>
                    ?? throw new InvalidOperationException($"Column '{column.Name}' holds VBuffer<Single>, not {typeof(TValue).Name}.");
            }
            return _main.GetGetter<TValue>(_parent._input.Schema[column.Index]);
        }

        /// <summary>The current row's sample, generating the batch that starts at this row when needed.</summary>
        ReadOnlySpan<float> Current()
        {
            long position = _main.Position;
            if (position < 0) throw new InvalidOperationException("The cursor is not on a row; call MoveNext first.");
            if (_batchStart < 0 || position < _batchStart || position >= _batchStart + _batchCount)
                FillBatch(position);
            return _batch.AsSpan((int)(position - _batchStart) * _sampleSize, _sampleSize);
        }

        void FillBatch(long position)
        {
            var model = _parent._model;
            if (_ahead is null || _ahead.Position >= position)
            {
                _ahead?.Dispose();
                var columns = new List<DataViewSchema.Column>();
                if (_parent._labelIndex >= 0) columns.Add(_parent._input.Schema[_parent._labelIndex]);
                if (_parent._seedIndex >= 0) columns.Add(_parent._input.Schema[_parent._seedIndex]);
                _ahead = _parent._input.GetRowCursor(columns);
                _aheadLabel = _parent._labelIndex >= 0 ? IndexColumn.CreateGetter(_ahead, _parent._input.Schema[_parent._labelIndex]) : null;
                _aheadSeed = _parent._seedIndex >= 0 ? IndexColumn.CreateGetter(_ahead, _parent._input.Schema[_parent._seedIndex]) : null;
            }
            while (_ahead.Position < position)
                if (!_ahead.MoveNext())
                    throw new InvalidOperationException($"The input data ended before row {position} when it was read again for generation; its row order must be repeatable.");
            var seeds = new List<long>(model.BatchSize);
            var labels = new List<int>(model.BatchSize);
            do
            {
                long p = _ahead.Position;
                seeds.Add(_aheadSeed is null ? model.Seed + p : model.ReadSeed(_aheadSeed(), p));
                labels.Add(_aheadLabel is null ? -1 : model.LabelFor(_aheadLabel(), p));
            }
            while (seeds.Count < model.BatchSize && _ahead.MoveNext());
            _batch = model.SampleBatch(seeds.ToArray(), labels.ToArray());
            _batchStart = position;
            _batchCount = seeds.Count;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
