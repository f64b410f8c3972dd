using McDit.Torch.Vae;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.MLNet.Latents;

/// <summary>
/// A latent cache (written by <c>mlContext.McDit().Data.CacheLatents</c>) as a data view for the trainer. Each row
/// keeps the posterior of one image; the <see cref="LatentColumnName"/> column draws a fresh latent from it whenever
/// it is read by a new cursor, as MaskDiT does with its cached VAE moments.
/// </summary>
/// <remarks>
/// <para>Columns: <c>Latent</c>, (mean + exp(logvar / 2)·ε − shift)·scaling, a float vector [C, h, w];
/// <c>LatentMean</c> and <c>LatentLogVar</c>, the stored (unscaled) posterior; <c>Label</c> (when the cache has
/// classes), a key over the class names (<c>KeyValues</c> annotation), missing for unlabelled rows.</para>
/// <para>ε of row r comes from a generator seeded by (<see cref="Seed"/>, r, the cursor's salt). The salt of a shuffled
/// cursor is the first number drawn from its <see cref="Random"/> (the trainer seeds one per epoch, so every epoch sees
/// new latents and a resumed run sees the same ones); the salt of an unshuffled cursor is the count of unshuffled
/// cursors reading <c>Latent</c> that this view opened before it (0, 1, 2, …). Records are read from the file when a cursor reaches them; only
/// the header is held in memory. The view shuffles itself and knows its row count.</para>
/// </remarks>
public sealed class LatentCacheDataView : IDataView
{
    /// <summary>Name of the sampled latent column.</summary>
    public const string LatentColumnName = "Latent";
    /// <summary>Name of the posterior-mean column.</summary>
    public const string MeanColumnName = "LatentMean";
    /// <summary>Name of the posterior log-variance column.</summary>
    public const string LogVarColumnName = "LatentLogVar";
    /// <summary>Name of the label column.</summary>
    public const string LabelColumnName = "Label";

    readonly LatentCacheFile _file;
    long _unshuffledCursors;

    internal LatentCacheDataView(LatentCacheFile file, long seed)
    {
        _file = file;
        Seed = seed;
        var builder = new DataViewSchema.Builder();
        var type = new VectorDataViewType(NumberDataViewType.Single, file.Channels, file.Height, file.Width);
        builder.AddColumn(LatentColumnName, type);
        builder.AddColumn(MeanColumnName, type);
        builder.AddColumn(LogVarColumnName, type);
        int classes = file.ClassNames.Length;
        if (classes > 0)
        {
            var names = file.ClassNames.Select(n => n.AsMemory()).ToArray();
            var annotations = new DataViewSchema.Annotations.Builder();
            annotations.Add("KeyValues", new VectorDataViewType(TextDataViewType.Instance, classes),
                (ref VBuffer<ReadOnlyMemory<char>> value) => value = new VBuffer<ReadOnlyMemory<char>>(classes, (ReadOnlyMemory<char>[])names.Clone()));
            builder.AddColumn(LabelColumnName, new KeyDataViewType(typeof(uint), classes), annotations.ToAnnotations());
        }
        Schema = builder.ToSchema();
    }

    /// <summary>The cache file.</summary>
    public string Path => _file.Path;
    /// <summary>Seed of the sampled latents.</summary>
    public long Seed { get; }
    /// <summary>Number of rows.</summary>
    public long Count => _file.Rows;
    /// <summary>Latent channels C.</summary>
    public int Channels => _file.Channels;
    /// <summary>Latent height h.</summary>
    public int Height => _file.Height;
    /// <summary>Latent width w.</summary>
    public int Width => _file.Width;
    /// <summary>The VAE's scaling factor the latents are multiplied by.</summary>
    public double ScalingFactor => _file.ScalingFactor;
    /// <summary>The VAE's shift factor subtracted before scaling, or null.</summary>
    public double? ShiftFactor => _file.ShiftFactor;
    /// <summary>The class names (the key values of <c>Label</c>); empty when the cache has no labels.</summary>
    public IReadOnlyList<string> ClassNames => _file.ClassNames;

    /// <summary>The columns: <c>Latent</c>, <c>LatentMean</c>, <c>LatentLogVar</c> and, with classes, <c>Label</c>.</summary>
    public DataViewSchema Schema { get; }
    /// <summary>True: a cursor asked for with a <see cref="Random"/> visits the rows in a random order.</summary>
    public bool CanShuffle => true;
    /// <summary>The number of rows; always known.</summary>
    public long? GetRowCount() => _file.Rows;

    /// <summary>A cursor over the rows, in order, or in a random order drawn from <paramref name="rand"/>.</summary>
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            if (column.Index < 0 || column.Index >= Schema.Count || Schema[column.Index].Name != column.Name)
                throw new ArgumentOutOfRangeException(nameof(columnsNeeded), $"Column '{column.Name}' does not belong to this data view.");
            active[column.Index] = true;
        }
        long salt;
        long[]? order = null;
        if (rand is null) salt = active[0] ? Interlocked.Increment(ref _unshuffledCursors) - 1 : 0; // only cursors that sample count
        else
        {
            salt = rand.NextInt64();
            order = new long[_file.Rows];
            for (long i = 0; i < order.Length; i++) order[i] = i;
            for (long i = order.Length - 1; i > 0; i--)
            {
                long j = rand.NextInt64(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }
        return new Cursor(this, active, order, salt);
    }

    /// <summary>One cursor (see <see cref="GetRowCursor"/>).</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    /// <summary>SplitMix64 finaliser.</summary>
    static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="eps"/> with N(0, 1) draws from the stream of (seed, row, salt) (SplitMix64 + Box–Muller).</summary>
    internal static void Gaussian(long seed, long row, long salt, Span<float> eps)
    {
        ulong state = Mix(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)row + 0x632BE59BD9B4E019UL) ^ Mix((ulong)salt * 0xD1B54A32D192ED03UL + 1)));
        double Uniform()
        {
            state = unchecked(state + 0x9E3779B97F4A7C15UL);
            return ((Mix(state) >> 11) + 0.5) * (1.0 / (1UL << 53)); // in (0, 1)
        }
        for (int i = 0; i < eps.Length; i += 2)
        {
            double radius = Math.Sqrt(-2.0 * Math.Log(Uniform())), angle = 2 * Math.PI * Uniform();
            eps[i] = (float)(radius * Math.Cos(angle));
            if (i + 1 < eps.Length) eps[i + 1] = (float)(radius * Math.Sin(angle));
        }
    }

    sealed class Cursor : McDit.MLNet.Internal.IndexedRowCursor
    {
        readonly LatentCacheDataView _view;
        readonly bool[] _active;
        readonly long _salt;
        readonly FileStream _stream;
        readonly byte[] _record;
        readonly float[] _mean, _logVar, _latent;
        long _loadedRow = -1, _latentRow = -1;
        int _label;

        public Cursor(LatentCacheDataView view, bool[] active, long[]? order, long salt) : base(view._file.Rows, order)
        {
            _view = view;
            _active = active;
            _salt = salt;
            _stream = new FileStream(view._file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            _record = new byte[view._file.RecordSize];
            int size = view._file.LatentSize;
            _mean = new float[size];
            _logVar = new float[size];
            _latent = new float[size];
        }

        public override DataViewSchema Schema => _view.Schema;

        void Load()
        {
            long row = Row;
            if (row == _loadedRow) return;
            var file = _view._file;
            _stream.Position = file.DataOffset + row * file.RecordSize;
            _stream.ReadExactly(_record);
            _label = BitConverter.ToInt32(_record, 0);
            var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(_record.AsSpan(4));
            floats.Slice(0, file.LatentSize).CopyTo(_mean);
            floats.Slice(file.LatentSize, file.LatentSize).CopyTo(_logVar);
            if (_label < -1 || _label >= file.ClassNames.Length || (file.ClassNames.Length == 0 && _label != -1))
                throw new InvalidDataException($"Latent cache '{file.Path}', row {row}: class {_label} is out of range (0..{file.ClassNames.Length - 1}, or −1).");
            _loadedRow = row;
        }

        void Sample()
        {
            Load();
            if (_latentRow == _loadedRow) return;
            var file = _view._file;
            Gaussian(_view.Seed, _loadedRow, _salt, _latent);
            double shift = file.ShiftFactor ?? 0;
            for (int i = 0; i < _latent.Length; i++)
                _latent[i] = (float)((_mean[i] + Math.Exp(0.5 * _logVar[i]) * _latent[i] - shift) * file.ScalingFactor);
            _latentRow = _loadedRow;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId value) => value = new DataViewRowId((ulong)Row, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor; include it in the columns passed to GetRowCursor.");
            Delegate getter = Schema[column.Index].Name switch
            {
                LatentColumnName => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => { Sample(); Copy(_latent, ref dst); }),
                MeanColumnName => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => { Load(); Copy(_mean, ref dst); }),
                LogVarColumnName => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => { Load(); Copy(_logVar, ref dst); }),
                _ => (ValueGetter<uint>)((ref uint dst) => { Load(); dst = (uint)(_label + 1); }),
            };
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}, not {typeof(TValue).Name}.");
        }

        static void Copy(float[] values, ref VBuffer<float> dst)
        {
            var editor = VBufferEditor.Create(ref dst, values.Length);
            values.CopyTo(editor.Values);
            dst = editor.Commit();
        }

        protected override void ReleaseResources() => _stream.Dispose();
    }
}
