using McDit.MLNet.Transforms;
using McDit.Torch.Diffusion;
using McDit.Torch.Runtime;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

// How ML.NET finds the loader when a saved model is read back (MLContext.Model.Load): by the loader signature
// written in the model, in the assembly named by VersionInfo.loaderAssemblyName.
[assembly: LoadableClass(PatchMaskingTransformer.Summary, typeof(PatchMaskingTransformer), null, typeof(SignatureLoadModel),
    PatchMaskingTransformer.UserName, PatchMaskingTransformer.LoaderSignature)]
[assembly: LoadableClass(PatchMaskingTransformer.Summary, typeof(IDataTransform), typeof(PatchMaskingTransformer), null,
    typeof(SignatureLoadDataTransform), PatchMaskingTransformer.UserName, PatchMaskingTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(PatchMaskingTransformer), null, typeof(SignatureLoadRowMapper),
    PatchMaskingTransformer.UserName, PatchMaskingTransformer.LoaderSignature)]

namespace McDit.MLNet.Transforms;

/// <summary>
/// Masks random patches of an image or latent column, row by row, with the masking code the training step uses
/// (<see cref="PatchMask"/>). Adds two columns: <see cref="MaskColumnName"/>, a float vector of
/// <see cref="TokenCount"/> values (1 = the patch token is masked, 0 = kept, tokens in row-major order over the
/// (H/p)×(W/p) patch grid), and <see cref="MaskedColumnName"/>, the input with every masked patch set to
/// <see cref="FillValue"/>, for inspection.
/// </summary>
/// <remarks>
/// <para>Each row's mask is drawn from a generator seeded by (<see cref="Seed"/>, the row's position in the input
/// data view), so rows get different masks and reading the same data again gives the same masks. Create it with
/// <c>mlContext.McDit().Transforms.MaskPatches(...)</c>; it saves and loads with <c>MLContext.Model</c>.</para>
/// <para>A data view without the input column passes through unchanged (no mask columns are added): masking is a
/// training-time step, so a saved training pipeline that starts with it (MaskPatches, then the trainer) still generates
/// from a view that holds only labels. A column of that name with the wrong type or size is still an error. The
/// estimator (<see cref="PatchMaskingEstimator"/>) requires the column.</para>
/// </remarks>
public sealed class PatchMaskingTransformer : RowToRowTransformerBase
{
    internal const string Summary = "Masks random patches of a CHW float vector column; outputs the per-token mask and the masked image.";
    internal const string UserName = "McDit Patch Masking Transform";
    internal const string LoaderSignature = "McDitPatchMaskTransform";

    /// <summary>Suffix of the mask column's name.</summary>
    public const string MaskSuffix = "Mask";
    /// <summary>Suffix of the masked-image column's name.</summary>
    public const string MaskedSuffix = "Masked";

    /// <summary>Base name of the output columns.</summary>
    public string OutputColumnName { get; }
    /// <summary>Name of the input column: a known-size float vector of C·H·W values in CHW order.</summary>
    public string InputColumnName { get; }
    /// <summary>Name of the mask column: <see cref="OutputColumnName"/> + "Mask".</summary>
    public string MaskColumnName => OutputColumnName + MaskSuffix;
    /// <summary>Name of the masked-image column: <see cref="OutputColumnName"/> + "Masked".</summary>
    public string MaskedColumnName => OutputColumnName + MaskedSuffix;
    /// <summary>Channels C of the input.</summary>
    public int Channels { get; }
    /// <summary>Height H of the input.</summary>
    public int Height { get; }
    /// <summary>Width W of the input.</summary>
    public int Width { get; }
    /// <summary>Side p of a square patch; H and W are multiples of it.</summary>
    public int PatchSize { get; }
    /// <summary>Fraction of patch tokens masked, in [0, 1); (1 − r)·L tokens are kept (at least one).</summary>
    public double MaskRatio { get; }
    /// <summary>Seed of the per-row masks.</summary>
    public int Seed { get; }
    /// <summary>Value written into masked patches of the masked-image column.</summary>
    public float FillValue { get; }
    /// <summary>Number of patch tokens L = (H/p)·(W/p).</summary>
    public int TokenCount => Height / PatchSize * (Width / PatchSize);

    static VersionInfo GetVersionInfo() => new(
        modelSignature: "MCDPMASK",
        verWrittenCur: 0x00010001, // initial
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(PatchMaskingTransformer).Assembly.FullName);

    internal PatchMaskingTransformer(IHostEnvironment env, string outputColumnName, string inputColumnName,
        int channels, int height, int width, int patchSize, double maskRatio, int seed, float fillValue)
        : base(Contracts.CheckRef(env, nameof(env)).Register(nameof(PatchMaskingTransformer)))
    {
        PatchMaskingValidation.CheckOptions(outputColumnName, inputColumnName, channels, height, width, patchSize, maskRatio, shapeRequired: true);
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        Channels = channels;
        Height = height;
        Width = width;
        PatchSize = patchSize;
        MaskRatio = maskRatio;
        Seed = seed;
        FillValue = fillValue;
    }

    // Factory method for SignatureLoadModel.
    static PatchMaskingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        env.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel(GetVersionInfo());
        // *** Binary format ***
        // string: output column name; string: input column name
        // int: channels, height, width, patch size; double: mask ratio; int: seed; float: fill value
        var output = ctx.LoadNonEmptyString();
        var input = ctx.LoadNonEmptyString();
        int channels = ctx.Reader.ReadInt32(), height = ctx.Reader.ReadInt32(), width = ctx.Reader.ReadInt32();
        int patchSize = ctx.Reader.ReadInt32();
        double maskRatio = ctx.Reader.ReadDouble();
        int seed = ctx.Reader.ReadInt32();
        float fillValue = ctx.Reader.ReadSingle();
        return new PatchMaskingTransformer(env, output, input, channels, height, width, patchSize, maskRatio, seed, fillValue);
    }

    // Factory method for SignatureLoadDataTransform.
    static IDataTransform Create(IHostEnvironment env, ModelLoadContext ctx, IDataView input)
        => Create(env, ctx).MakeDataTransform(input);

    // Factory method for SignatureLoadRowMapper.
    static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema)
        => Create(env, ctx).MakeRowMapper(inputSchema);

    /// <summary>Writes the options (see the binary format in the loader).</summary>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(OutputColumnName);
        ctx.SaveNonEmptyString(InputColumnName);
        ctx.Writer.Write(Channels);
        ctx.Writer.Write(Height);
        ctx.Writer.Write(Width);
        ctx.Writer.Write(PatchSize);
        ctx.Writer.Write(MaskRatio);
        ctx.Writer.Write(Seed);
        ctx.Writer.Write(FillValue);
    }

    /// <summary>Builds the row mapper after checking the input column against the shape (no column: a mapper that adds nothing).</summary>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>
    /// Draws the mask of the row at <paramref name="position"/>: L values, 1 = masked. The same
    /// (<see cref="Seed"/>, position) always gives the same mask.
    /// </summary>
    internal float[] DrawMask(long position)
    {
        TorchBackend.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        using var generator = new torch.Generator(RowSeed(Seed, position));
        using var mask = PatchMask.Random(1, TokenCount, MaskRatio, generator);
        return mask.Mask.data<float>().ToArray();
    }

    /// <summary>Mixes seed and row position (SplitMix64 finaliser) into a generator seed.</summary>
    internal static ulong RowSeed(int seed, long position)
    {
        ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)position * 0xBF58476D1CE4E5B9UL + 0x632BE59BD9B4E019UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    /// <summary>Writes <paramref name="image"/> into <paramref name="destination"/> with masked patches set to the fill value.</summary>
    internal void ApplyMask(ReadOnlySpan<float> image, ReadOnlySpan<float> mask, Span<float> destination)
    {
        image.CopyTo(destination);
        int p = PatchSize, gridWidth = Width / p, plane = Height * Width;
        for (int token = 0; token < mask.Length; token++)
        {
            if (mask[token] == 0) continue;
            int y0 = token / gridWidth * p, x0 = token % gridWidth * p;
            for (int c = 0; c < Channels; c++)
                for (int y = y0; y < y0 + p; y++)
                    destination.Slice(c * plane + y * Width + x0, p).Fill(FillValue);
        }
    }

    sealed class Mapper : MapperBase
    {
        readonly PatchMaskingTransformer _parent;
        readonly int _inputIndex;
        readonly VectorDataViewType _inputType;

        readonly bool _passThrough;

        public Mapper(PatchMaskingTransformer parent, DataViewSchema inputSchema)
            : base(parent.Host.Register(nameof(Mapper)), inputSchema, parent)
        {
            _parent = parent;
            // No input column (a view of labels given to a saved training pipeline): add nothing.
            _passThrough = inputSchema.GetColumnOrNull(parent.InputColumnName) is null;
            _inputIndex = -1;
            _inputType = _passThrough ? new VectorDataViewType(NumberDataViewType.Single, parent.Channels, parent.Height, parent.Width)
                : PatchMaskingValidation.CheckInputColumn(inputSchema, parent.InputColumnName,
                    parent.Channels, parent.Height, parent.Width, parent.PatchSize, out _inputIndex);
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() => _passThrough
            ? Array.Empty<DataViewSchema.DetachedColumn>()
            : new[]
            {
                new DataViewSchema.DetachedColumn(_parent.MaskColumnName, new VectorDataViewType(NumberDataViewType.Single, _parent.TokenCount)),
                new DataViewSchema.DetachedColumn(_parent.MaskedColumnName, _inputType),
            };

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            if (_passThrough) return _ => false;
            bool any = activeOutput(0) || activeOutput(1);
            return col => any && col == _inputIndex;
        }

        protected override void SaveModel(ModelSaveContext ctx) => _parent.SaveModel(ctx);

        /// <summary>Makes the getters of the active outputs; both share one mask per row.</summary>
        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            if (_passThrough) return Array.Empty<Delegate>();
            var state = new RowState(_parent);
            var getters = new Delegate[2];
            for (int i = 0; i < getters.Length; i++)
                if (activeOutput(i)) getters[i] = MakeGetter(input, i, state);
            return getters;
        }

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            return MakeGetter(input, iinfo, new RowState(_parent));
        }

        Delegate MakeGetter(DataViewRow input, int iinfo, RowState state)
        {
            if (iinfo == 0)
            {
                ValueGetter<VBuffer<float>> maskGetter = (ref VBuffer<float> dst) =>
                {
                    var mask = state.MaskAt(input.Position);
                    var editor = VBufferEditor.Create(ref dst, mask.Length);
                    mask.CopyTo(editor.Values);
                    dst = editor.Commit();
                };
                return maskGetter;
            }
            var imageGetter = input.GetGetter<VBuffer<float>>(input.Schema[_inputIndex]);
            var image = default(VBuffer<float>);
            float[]? dense = null;
            ValueGetter<VBuffer<float>> maskedGetter = (ref VBuffer<float> dst) =>
            {
                imageGetter(ref image);
                var mask = state.MaskAt(input.Position);
                var editor = VBufferEditor.Create(ref dst, _inputType.Size);
                if (image.IsDense)
                    _parent.ApplyMask(image.GetValues(), mask, editor.Values);
                else
                {
                    dense ??= new float[_inputType.Size];
                    image.CopyTo(dense);
                    _parent.ApplyMask(dense, mask, editor.Values);
                }
                dst = editor.Commit();
            };
            return maskedGetter;
        }

        // The mask of the row the cursor is on, shared by the mask and masked-image getters.
        sealed class RowState
        {
            readonly PatchMaskingTransformer _parent;
            long _position = long.MinValue;
            float[] _mask = Array.Empty<float>();

            public RowState(PatchMaskingTransformer parent) => _parent = parent;

            public float[] MaskAt(long position)
            {
                if (position != _position || _mask.Length == 0)
                {
                    _mask = _parent.DrawMask(position);
                    _position = position;
                }
                return _mask;
            }
        }
    }
}
