using McDit.MLNet.Latents;
using McDit.MLNet.Transforms;
using McDit.Torch.Runtime;
using McDit.Torch.Vae;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

[assembly: LoadableClass(LatentEncodingTransformer.Summary, typeof(LatentEncodingTransformer), null, typeof(SignatureLoadModel),
    LatentEncodingTransformer.UserName, LatentEncodingTransformer.LoaderSignature)]
[assembly: LoadableClass(LatentEncodingTransformer.Summary, typeof(IDataTransform), typeof(LatentEncodingTransformer), null,
    typeof(SignatureLoadDataTransform), LatentEncodingTransformer.UserName, LatentEncodingTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(LatentEncodingTransformer), null, typeof(SignatureLoadRowMapper),
    LatentEncodingTransformer.UserName, LatentEncodingTransformer.LoaderSignature)]

namespace McDit.MLNet.Transforms;

/// <summary>
/// Encodes an image column into the space a diffusion transformer is trained in. Without a VAE the latent space is
/// pixel space and the output column is a copy of the input. With a VAE (<see cref="AutoencoderKL"/>) each row's
/// image, a known-size float vector [C, H, W] with values in [<see cref="InputMinimum"/>, <see cref="InputMaximum"/>]
/// ([0, 1] by default, ML.NET's pixel convention), is mapped to [−1, 1] and encoded: the output is the latent
/// [latent, H/f, W/f] as the diffusion model sees it, (z − shift)·scaling_factor, where z is the posterior mean, or a
/// sample of the posterior when <see cref="SampleLatent"/> is set.
/// </summary>
/// <remarks>
/// <para>With <see cref="OutputsMoments"/> it also adds <see cref="MeanColumnName"/> and <see cref="LogVarColumnName"/>,
/// the unscaled posterior mean and log-variance (what a latent cache keeps). All columns of a row come from one
/// encoder run; rows are encoded one at a time on the VAE's device (the CPU for a loaded model).</para>
/// <para>A sampled latent of the row at position i is drawn from a generator seeded by (<see cref="Seed"/>, i), so reading
/// the data again gives the same latents.</para>
/// <para>Saves and loads with <c>MLContext.Model</c>; the VAE's weights are stored in the model zip
/// (<c>vae.safetensors</c>, with its config), so a loaded pipeline needs no VAE file.</para>
/// <para>A data view without the image column passes through unchanged (no latent columns are added), so a saved
/// training pipeline that encodes its images before the trainer still generates from a view that holds only labels.
/// The estimator (<see cref="LatentEncodingEstimator"/>) requires the column.</para>
/// </remarks>
public sealed class LatentEncodingTransformer : RowToRowTransformerBase
{
    internal const string Summary = "Encodes a CHW float image column into VAE latents (identity without a VAE).";
    internal const string UserName = "McDit Latent Encoding Transform";
    internal const string LoaderSignature = "McDitLatentEncodeXf"; // ML.NET allows at most 23 characters
    const string VaeStream = "vae.safetensors";

    /// <summary>Suffix of the posterior-mean column's name.</summary>
    public const string MeanSuffix = "Mean";
    /// <summary>Suffix of the posterior log-variance column's name.</summary>
    public const string LogVarSuffix = "LogVar";

    /// <summary>The latent column.</summary>
    public string OutputColumnName { get; }
    /// <summary>The image column: a known-size float vector [C, H, W] (or [H, W]).</summary>
    public string InputColumnName { get; }
    /// <summary>The VAE, or null for pixel space (the identity). Shared, not copied.</summary>
    public AutoencoderKL? Vae { get; }
    /// <summary>Input value of black; mapped to −1 before encoding.</summary>
    public float InputMinimum { get; }
    /// <summary>Input value of white; mapped to +1 before encoding.</summary>
    public float InputMaximum { get; }
    /// <summary>Output a sample of the posterior instead of its mean.</summary>
    public bool SampleLatent { get; }
    /// <summary>Seed of the sampled latents (row i uses (Seed, i)).</summary>
    public int Seed { get; }
    /// <summary>Whether the posterior mean and log-variance columns are added (VAE only).</summary>
    public bool OutputsMoments { get; }
    /// <summary>Name of the posterior-mean column: <see cref="OutputColumnName"/> + "Mean".</summary>
    public string MeanColumnName => OutputColumnName + MeanSuffix;
    /// <summary>Name of the posterior log-variance column: <see cref="OutputColumnName"/> + "LogVar".</summary>
    public string LogVarColumnName => OutputColumnName + LogVarSuffix;

    static VersionInfo GetVersionInfo() => new(
        modelSignature: "MCDLATEN",
        verWrittenCur: 0x00010001, // initial
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(LatentEncodingTransformer).Assembly.FullName);

    internal LatentEncodingTransformer(IHostEnvironment env, string outputColumnName, string inputColumnName, AutoencoderKL? vae,
        float inputMinimum, float inputMaximum, bool sampleLatent, int seed, bool outputMoments)
        : base(Contracts.CheckRef(env, nameof(env)).Register(nameof(LatentEncodingTransformer)))
    {
        CheckOptions(outputColumnName, inputColumnName, inputMinimum, inputMaximum);
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        Vae = vae;
        InputMinimum = inputMinimum;
        InputMaximum = inputMaximum;
        SampleLatent = sampleLatent && vae is not null;
        Seed = seed;
        OutputsMoments = outputMoments && vae is not null;
        vae?.eval();
    }

    internal static void CheckOptions(string outputColumnName, string inputColumnName, float inputMinimum, float inputMaximum)
    {
        if (string.IsNullOrWhiteSpace(outputColumnName))
            throw new ArgumentException("The latent column name must not be empty.", nameof(outputColumnName));
        if (string.IsNullOrWhiteSpace(inputColumnName))
            throw new ArgumentException("The image column name must not be empty.", nameof(inputColumnName));
        if (!float.IsFinite(inputMinimum) || !float.IsFinite(inputMaximum) || inputMaximum <= inputMinimum)
            throw new ArgumentOutOfRangeException(nameof(inputMaximum), $"[{inputMinimum}, {inputMaximum}]",
                "Expected finite inputMinimum < inputMaximum (0 and 1 for ML.NET pixels scaled by 1/255).");
    }

    // Factory method for SignatureLoadModel.
    static LatentEncodingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        env.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel(GetVersionInfo());
        // *** Binary format ***
        // string: output column; string: input column; float: input minimum, maximum; bool: sample; int: seed;
        // bool: moments; bool: has VAE; binary stream vae.safetensors when it has one.
        var output = ctx.LoadNonEmptyString();
        var input = ctx.LoadNonEmptyString();
        float min = ctx.Reader.ReadSingle(), max = ctx.Reader.ReadSingle();
        bool sample = ctx.Reader.ReadBoolean();
        int seed = ctx.Reader.ReadInt32();
        bool moments = ctx.Reader.ReadBoolean();
        bool hasVae = ctx.Reader.ReadBoolean();
        AutoencoderKL? vae = null;
        if (hasVae)
        {
            byte[]? bytes = null;
            if (!ctx.TryLoadBinaryStream(VaeStream, r =>
                {
                    using var ms = new MemoryStream();
                    r.BaseStream.CopyTo(ms);
                    bytes = ms.ToArray();
                }) || bytes is null)
                throw new InvalidDataException($"The latent encoding transform in this zip has no '{VaeStream}' entry; the model file is incomplete.");
            vae = VaeRuntime.FromBytes(bytes, $"model zip entry {VaeStream}");
        }
        return new LatentEncodingTransformer(env, output, input, vae, min, max, sample, seed, moments);
    }

    // Factory method for SignatureLoadDataTransform.
    static IDataTransform Create(IHostEnvironment env, ModelLoadContext ctx, IDataView input)
        => Create(env, ctx).MakeDataTransform(input);

    // Factory method for SignatureLoadRowMapper.
    static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema)
        => Create(env, ctx).MakeRowMapper(inputSchema);

    /// <summary>Writes the options and, with a VAE, its weights (see the binary format in the loader).</summary>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(OutputColumnName);
        ctx.SaveNonEmptyString(InputColumnName);
        ctx.Writer.Write(InputMinimum);
        ctx.Writer.Write(InputMaximum);
        ctx.Writer.Write(SampleLatent);
        ctx.Writer.Write(Seed);
        ctx.Writer.Write(OutputsMoments);
        ctx.Writer.Write(Vae is not null);
        if (Vae is not null)
        {
            var bytes = VaeRuntime.ToBytes(Vae);
            ctx.SaveBinaryStream(VaeStream, w => w.Write(bytes));
        }
    }

    /// <summary>Builds the row mapper after checking the input column (no column: a mapper that adds nothing).</summary>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Checks the image column and returns its C, H, W (and the input type).</summary>
    internal (VectorDataViewType Type, int C, int H, int W, int Index) CheckInput(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema),
                $"Image column '{InputColumnName}' was not found; expected a known-size float vector [C, H, W]. " +
                $"The data has: {Trainers.ImageColumnReader.Describe(schema)}.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType n } vector || n != NumberDataViewType.Single || !vector.IsKnownSize)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Image column '{InputColumnName}' has type {column.Type}; expected a known-size vector of Single in CHW order " +
                "(ExtractPixels with interleavePixelColors false and scaleImage 1/255, or McDit's loaders).");
        if (Vae is null) return (vector, 0, 0, 0, column.Index);
        var dims = vector.Dimensions;
        (int c, int h, int w) = dims.Length switch
        {
            3 => (dims[0], dims[1], dims[2]),
            2 => (1, dims[0], dims[1]),
            _ => (0, 0, 0),
        };
        var config = Vae.Config;
        int f = config.DownsamplingFactor;
        if (c != config.InChannels || h % f != 0 || w % f != 0 || h == 0 || w == 0)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Image column '{InputColumnName}' has dimensions [{string.Join(", ", dims)}]; the VAE expects [{config.InChannels}, H, W] " +
                $"with H and W multiples of {f}.");
        return (vector, c, h, w, column.Index);
    }

    /// <summary>Encodes one image (C·H·W floats in the input range): latent (model scale), mean and log-variance (unscaled).</summary>
    internal (float[] Latent, float[] Mean, float[] LogVar) Encode(ReadOnlySpan<float> pixels, int c, int h, int w, long position)
    {
        var vae = Vae!;
        float scale = 2f / (InputMaximum - InputMinimum), offset = -1f - InputMinimum * scale;
        var x = new float[pixels.Length];
        for (int i = 0; i < x.Length; i++) x[i] = pixels[i] * scale + offset;
        var (mean, logVar) = VaeRuntime.EncodeMoments(vae, x, 1, c, h, w);
        var z = mean;
        if (SampleLatent)
        {
            TorchBackend.EnsureInitialized();
            using var scope = NewDisposeScope();
            using var generator = new Generator(PatchMaskingTransformer.RowSeed(Seed, position), torch.CPU);
            var shape = new long[] { mean.Length };
            z = AutoencoderKL.Sample(torch.tensor(mean, shape), torch.tensor(logVar, shape), generator).data<float>().ToArray();
        }
        var latent = new float[z.Length];
        for (int i = 0; i < z.Length; i++) latent[i] = VaeRuntime.ToModelLatent(vae.Config, z[i]);
        return (latent, mean, logVar);
    }

    sealed class Mapper : MapperBase
    {
        readonly LatentEncodingTransformer _parent;
        readonly VectorDataViewType _inputType;
        readonly int _inputIndex, _c, _h, _w;
        readonly bool _passThrough;

        public Mapper(LatentEncodingTransformer parent, DataViewSchema inputSchema)
            : base(parent.Host.Register(nameof(Mapper)), inputSchema, parent)
        {
            _parent = parent;
            // No image column (a view of labels given to a saved training pipeline): add nothing.
            _passThrough = inputSchema.GetColumnOrNull(parent.InputColumnName) is null;
            if (_passThrough)
            {
                _inputType = new VectorDataViewType(NumberDataViewType.Single, 1);
                _inputIndex = -1;
            }
            else
                (_inputType, _c, _h, _w, _inputIndex) = parent.CheckInput(inputSchema);
        }

        VectorDataViewType LatentType()
        {
            if (_parent.Vae is null) return _inputType;
            var config = _parent.Vae.Config;
            int f = config.DownsamplingFactor;
            return new VectorDataViewType(NumberDataViewType.Single, config.LatentChannels, _h / f, _w / f);
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore()
        {
            if (_passThrough) return Array.Empty<DataViewSchema.DetachedColumn>();
            var type = LatentType();
            var columns = new List<DataViewSchema.DetachedColumn> { new(_parent.OutputColumnName, type) };
            if (_parent.OutputsMoments)
            {
                columns.Add(new(_parent.MeanColumnName, type));
                columns.Add(new(_parent.LogVarColumnName, type));
            }
            return columns.ToArray();
        }

        int OutputCount => _passThrough ? 0 : _parent.OutputsMoments ? 3 : 1;

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            bool any = Enumerable.Range(0, OutputCount).Any(activeOutput);
            return col => any && col == _inputIndex;
        }

        protected override void SaveModel(ModelSaveContext ctx) => _parent.SaveModel(ctx);

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var state = new RowState(this, input);
            var getters = new Delegate[OutputCount];
            for (int i = 0; i < getters.Length; i++)
                if (activeOutput(i)) getters[i] = MakeGetter(state, i);
            return getters;
        }

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            return MakeGetter(new RowState(this, input), iinfo);
        }

        static Delegate MakeGetter(RowState state, int iinfo)
        {
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> dst) =>
            {
                if (state.Identity(ref dst)) return;
                var values = state.Current()[iinfo];
                var editor = VBufferEditor.Create(ref dst, values.Length);
                values.CopyTo(editor.Values);
                dst = editor.Commit();
            };
            return getter;
        }

        // Encodes the current row once and shares the result between the getters.
        sealed class RowState
        {
            readonly Mapper _mapper;
            readonly DataViewRow _input;
            ValueGetter<VBuffer<float>>? _imageGetter;
            VBuffer<float> _pixels;
            float[]? _dense;
            long _position = long.MinValue;
            float[][] _current = Array.Empty<float[]>();

            public RowState(Mapper mapper, DataViewRow input)
            {
                _mapper = mapper;
                _input = input;
            }

            // Made on first use: the input column is active only when an output column is.
            ValueGetter<VBuffer<float>> Image => _imageGetter ??= _input.GetGetter<VBuffer<float>>(_input.Schema[_mapper._inputIndex]);

            /// <summary>Without a VAE: copies the input into <paramref name="dst"/> and returns true.</summary>
            public bool Identity(ref VBuffer<float> dst)
            {
                if (_mapper._parent.Vae is not null) return false;
                Image(ref _pixels);
                _pixels.CopyTo(ref dst);
                return true;
            }

            public float[][] Current()
            {
                long position = _input.Position;
                if (position == _position && _current.Length > 0) return _current;
                Image(ref _pixels);
                _dense ??= new float[_mapper._inputType.Size];
                _pixels.CopyTo(_dense);
                foreach (var v in _dense)
                    if (!float.IsFinite(v))
                        throw new InvalidOperationException(
                            $"Image column '{_mapper._parent.InputColumnName}', row {position}: a pixel is {v}; expected finite values.");
                var (latent, mean, logVar) = _mapper._parent.Encode(_dense, _mapper._c, _mapper._h, _mapper._w, position);
                _current = new[] { latent, mean, logVar };
                _position = position;
                return _current;
            }
        }
    }
}
