using System.Text;
using System.Text.Json;
using McDit.MLNet.Generation;
using McDit.MLNet.Imaging;
using McDit.MLNet.Internal;
using McDit.MLNet.Latents;
using McDit.Torch.Diffusion;
using McDit.Torch.IO;
using McDit.Torch.Models;
using McDit.Torch.Runtime;
using McDit.Torch.Training;
using McDit.Torch.Vae;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

[assembly: LoadableClass(McDitModel.Summary, typeof(McDitModel), null, typeof(SignatureLoadModel),
    McDitModel.UserName, McDitModel.LoaderSignature)]
[assembly: LoadableClass(McDitModel.Summary, typeof(IDataTransform), typeof(McDitModel), null,
    typeof(SignatureLoadDataTransform), McDitModel.UserName, McDitModel.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(McDitModel), null, typeof(SignatureLoadRowMapper),
    McDitModel.UserName, McDitModel.LoaderSignature)]

namespace McDit.MLNet.Generation;

/// <summary>
/// A trained masked diffusion transformer as an ML.NET transformer: the generator. For every input row it adds
/// <see cref="GeneratedImageColumnName"/>, an <see cref="MLImage"/> (<see cref="ImageDataViewType"/> of
/// <see cref="Height"/>×<see cref="Width"/>, Bgra32; grey samples are replicated to the three colours), and
/// <see cref="GeneratedPixelsColumnName"/>, the sample as C·H·W floats (CHW order) in the pixel range the model was
/// trained on (<see cref="InputMinimum"/> to <see cref="InputMaximum"/>, [0, 1] by default, like ExtractPixels with scale 1/255).
/// </summary>
/// <remarks>
/// <para>Each row's class comes from <see cref="LabelColumnName"/> (a key, or a 0-based class index; a missing key
/// generates unconditionally) and its seed from <see cref="SeedColumnName"/>, or is <see cref="Seed"/> + the row's
/// position. The starting noise is drawn from the row's own seed, so a row's image depends on its class and seed
/// only, not on the rows batched with it (up to float rounding of batched arithmetic); the same seed gives the same
/// image.</para>
/// <para><see cref="Transform"/> generates lazily and in batches: when a generated column of a row is first read,
/// the cursor reads the class and seed of up to <see cref="BatchSize"/> rows ahead and runs the sampler once for all
/// of them. A <c>PredictionEngine</c> generates one row per call.</para>
/// <para>A latent-space model carries a <see cref="Decoder"/> (a VAE, from the trainer's <c>LatentDecoderPath</c> /
/// <c>LatentDecoder</c> or <see cref="WithDecoder"/>): the network samples latents [C, H, W] and the generated columns
/// hold the decoded images [<see cref="ImageChannels"/>, <see cref="ImageHeight"/>, <see cref="ImageWidth"/>] with
/// pixels in [0, 1], while <see cref="Generate"/> still returns the latents.</para>
/// <para>Saved with <c>MLContext.Model.Save</c> as <c>config.json</c> and <c>model.safetensors</c> (the EMA weights)
/// inside the model zip, plus <c>vae.safetensors</c> for a model with a decoder; <c>MLContext.Model.Load</c> restores
/// it with no registration call.</para>
/// </remarks>
public sealed class McDitModel : RowToRowTransformerBase, ITransformer
{
    internal const string Summary = "Generates images with a trained masked diffusion transformer (DiT / MaskDiT / MC-DiT).";
    internal const string UserName = "McDit Diffusion Transformer Generator";
    internal const string LoaderSignature = "McDitGeneratorModel";
    const string ConfigStream = "config.json";
    const string WeightsStream = "model.safetensors";
    const string DecoderStream = "vae.safetensors";

    readonly McDitModelSettings _settings;
    readonly MaskedDiffusionTransformer _network;
    readonly AutoencoderKL? _decoder;
    readonly object _gate;
    int _samplerRuns;

    static VersionInfo GetVersionInfo() => new(
        modelSignature: "MCDITGEN",
        verWrittenCur: 0x00010001, // initial
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(McDitModel).Assembly.FullName);

    internal McDitModel(IHostEnvironment env, McDitModelSettings settings, MaskedDiffusionTransformer network, object? gate = null,
        AutoencoderKL? decoder = null)
        : base(Contracts.CheckRef(env, nameof(env)).Register(nameof(McDitModel)))
    {
        _settings = (settings with { HasLatentDecoder = decoder is not null }).Validated();
        if (decoder is not null && decoder.Config.LatentChannels != _settings.Channels)
            throw new ArgumentException(
                $"The decoder VAE has {decoder.Config.LatentChannels} latent channels; this model generates {_settings.Channels}-channel samples.", nameof(decoder));
        _network = network;
        _network.eval();
        _decoder = decoder;
        _decoder?.eval();
        _gate = gate ?? new object();
    }

    // ------------------------------------------------------------------ public surface

    /// <summary>The network's shape (including the decoder and inputs the training method added).</summary>
    public DiffusionTransformerConfig Config => _settings.Model;
    /// <summary>The method the model was trained with.</summary>
    public TrainingMethod Method => _settings.Method;
    /// <summary>Channels C of a generated image (1 grey, 3 colour).</summary>
    public int Channels => _settings.Channels;
    /// <summary>
    /// The trainer's InputMinimum (0 by default): the value the model's −1 stands for; the pixel value of black in
    /// <see cref="GeneratedPixelsColumnName"/> unless the model has a <see cref="Decoder"/> (decoded pixels are in [0, 1]).
    /// </summary>
    public float InputMinimum => _settings.InputMinimum;
    /// <summary>The trainer's InputMaximum (1 by default): the value the model's +1 stands for (see <see cref="InputMinimum"/>).</summary>
    public float InputMaximum => _settings.InputMaximum;

    /// <summary>The VAE that decodes generated latents into images, or null for a pixel-space model. Shared, not copied.</summary>
    public AutoencoderKL? Decoder => _decoder;
    /// <summary>Channels of a generated image: the decoder's output channels, else <see cref="Channels"/>.</summary>
    public int ImageChannels => _decoder?.Config.OutChannels ?? Channels;
    /// <summary>Height of a generated image: H·f with a decoder (f its downsampling factor), else <see cref="Height"/>.</summary>
    public int ImageHeight => Height * (_decoder?.Config.DownsamplingFactor ?? 1);
    /// <summary>Width of a generated image: W·f with a decoder, else <see cref="Width"/>.</summary>
    public int ImageWidth => Width * (_decoder?.Config.DownsamplingFactor ?? 1);

    /// <summary>Writes an image (model scale, [−1, 1]) into a pixel vector in the output pixel range.</summary>
    internal void CopyPixels(ReadOnlySpan<float> sample, ref VBuffer<float> dst)
    {
        var editor = VBufferEditor.Create(ref dst, sample.Length);
        for (int i = 0; i < sample.Length; i++) editor.Values[i] = ToPixelRange(sample[i]);
        dst = editor.Commit();
    }

    /// <summary>
    /// Maps an image value in [−1, 1] to the output pixel range: [0, 1] for decoded images, else the range of the data
    /// the model was trained on.
    /// </summary>
    internal float ToPixelRange(float v)
    {
        float min = _decoder is null ? InputMinimum : 0f, max = _decoder is null ? InputMaximum : 1f;
        return min + (Math.Clamp(v, -1f, 1f) + 1f) * 0.5f * (max - min);
    }
    /// <summary>Height H of a generated image.</summary>
    public int Height => _settings.Height;
    /// <summary>Width W of a generated image.</summary>
    public int Width => _settings.Width;
    /// <summary>Number of classes C; 0 for an unconditional model.</summary>
    public int NumberOfClasses => _settings.NumberOfClasses;
    /// <summary>Class names from the key values of the training label column, or null.</summary>
    public IReadOnlyList<string>? ClassNames => _settings.ClassNames;
    /// <summary>The input column of classes (null for an unconditional model).</summary>
    public string? LabelColumnName => _settings.NumberOfClasses > 0 ? _settings.LabelColumnName : null;
    /// <summary>The optional input column of per-row seeds.</summary>
    public string? SeedColumnName => _settings.SeedColumnName;
    /// <summary>The output column of generated images (MLImage).</summary>
    public string GeneratedImageColumnName => _settings.GeneratedImageColumnName;
    /// <summary>
    /// The output column of generated pixels: a float vector [C, H, W] (CHW order) with values in
    /// [<see cref="InputMinimum"/>, <see cref="InputMaximum"/>], [0, 1] by default (decoded images: always [0, 1]),
    /// like ExtractPixels with scale 1/255 and McDit's loaders, so it can go to <c>Evaluate</c> as it is.
    /// </summary>
    public string GeneratedPixelsColumnName => _settings.GeneratedPixelsColumnName;
    /// <summary>Sampler steps N.</summary>
    public int SamplingSteps => _settings.SamplingSteps;
    /// <summary>The ODE solver.</summary>
    public SamplerSolver Solver => _settings.Solver;
    /// <summary>Classifier-free guidance scale (1 = none).</summary>
    public double GuidanceScale => _settings.GuidanceScale;
    /// <summary>
    /// The guidance interval (low, high]: guidance applies only at noise levels σ inside it (Kynkäänniemi et al. 2024);
    /// (0, +∞] guides every step. Outside it each sampler evaluation costs half.
    /// </summary>
    public (double Low, double High) GuidanceInterval => (_settings.GuidanceSigmaMin, _settings.GuidanceSigmaMax ?? double.PositiveInfinity);
    /// <summary>Pixels by which every other sampler evaluation sees the image rolled (0: none); see <see cref="SamplerOptions.AlternatingShift"/>.</summary>
    public int AlternatingShift => _settings.AlternatingShift;
    /// <summary>The largest σ at which the <see cref="AlternatingShift"/> applies (+∞: every other evaluation).</summary>
    public double AlternatingShiftSigmaMax => _settings.AlternatingShiftSigmaMax ?? double.PositiveInfinity;
    /// <summary>Rows generated per sampler run.</summary>
    public int BatchSize => _settings.BatchSize;
    /// <summary>Base seed: without a seed column, row i is generated from seed <c>Seed + i</c>.</summary>
    public long Seed => _settings.Seed;
    /// <summary>Optimizer steps the model was trained for.</summary>
    public long TrainedSteps => _settings.TrainedSteps;
    /// <summary>The training loss of the last step (NaN when unknown).</summary>
    public double FinalLoss => _settings.FinalLoss;

    /// <summary>Sampler runs made so far (one per generated batch); for tests and diagnostics.</summary>
    internal int SamplerRuns => Volatile.Read(ref _samplerRuns);

    internal McDitModelSettings Settings => _settings;
    internal MaskedDiffusionTransformer Network => _network;
    /// <summary>The lock every use of the (shared) network holds.</summary>
    internal object Gate => _gate;

    /// <summary>
    /// The same network with other generation settings (the network is shared, not copied). Null keeps a setting.
    /// </summary>
    /// <param name="samplingSteps">Sampler steps N ≥ 1.</param>
    /// <param name="solver">Heun or Euler; Ddpm (DiT's sampler) for DiT weights.</param>
    /// <param name="guidanceScale">Classifier-free guidance scale (1 = none).</param>
    /// <param name="batchSize">Rows per sampler run.</param>
    /// <param name="seed">Base seed of rows without a seed column.</param>
    /// <param name="seedColumnName">Input column of per-row seeds; an empty string removes it.</param>
    /// <param name="guidanceInterval">Guide only at σ in (low, high] (<see cref="GuidanceInterval"/>); high may be +∞.</param>
    /// <param name="alternatingShift">Pixels by which every other evaluation sees the image rolled (<see cref="AlternatingShift"/>).</param>
    /// <param name="alternatingShiftSigmaMax">The largest σ at which the shift applies (+∞: every other evaluation).</param>
    public McDitModel WithSampling(int? samplingSteps = null, SamplerSolver? solver = null, double? guidanceScale = null,
        int? batchSize = null, long? seed = null, string? seedColumnName = null, (double Low, double High)? guidanceInterval = null,
        int? alternatingShift = null, double? alternatingShiftSigmaMax = null)
        => new(Host, _settings with
        {
            AlternatingShift = alternatingShift ?? _settings.AlternatingShift,
            AlternatingShiftSigmaMax = alternatingShiftSigmaMax is { } shiftMax
                ? (double.IsPositiveInfinity(shiftMax) ? null : shiftMax) : _settings.AlternatingShiftSigmaMax,
            GuidanceSigmaMin = guidanceInterval?.Low ?? _settings.GuidanceSigmaMin,
            GuidanceSigmaMax = guidanceInterval is { } interval
                ? (double.IsPositiveInfinity(interval.High) ? null : interval.High)
                : _settings.GuidanceSigmaMax,
            SamplingSteps = samplingSteps ?? _settings.SamplingSteps,
            Solver = solver ?? _settings.Solver,
            GuidanceScale = guidanceScale ?? _settings.GuidanceScale,
            BatchSize = batchSize ?? _settings.BatchSize,
            Seed = seed ?? _settings.Seed,
            SeedColumnName = seedColumnName is null ? _settings.SeedColumnName : seedColumnName.Length == 0 ? null : seedColumnName,
        }, _network, _gate, _decoder);

    /// <summary>
    /// The same network (shared) with a VAE that decodes its samples: the generated columns, <see cref="GenerateImages"/>
    /// and <see cref="SaveImageGrid"/> then give decoded images with pixels in [0, 1], <see cref="ImageHeight"/>×<see cref="ImageWidth"/>,
    /// while <see cref="Generate"/> returns the latents. The model's samples, mapped from [−1, 1] to
    /// [<see cref="InputMinimum"/>, <see cref="InputMaximum"/>], are taken as latents scaled as
    /// <see cref="AutoencoderKL.EncodeLatents"/> makes them. Null removes the decoder.
    /// </summary>
    /// <param name="vae">The VAE (shared, not copied; saved with the model), or null.</param>
    /// <exception cref="ArgumentException">The VAE's latent channels differ from <see cref="Channels"/>.</exception>
    public McDitModel WithDecoder(AutoencoderKL? vae) => new(Host, _settings, _network, _gate, vae);

    /// <summary>
    /// Adds the generated image and pixel columns to <paramref name="input"/>, generating lazily in batches of
    /// <see cref="BatchSize"/> rows (one sampler run per batch).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The label or seed column is missing or of the wrong type.</exception>
    public new IDataView Transform(IDataView input)
    {
        Host.CheckValue(input, nameof(input));
        return new GeneratingDataView(this, input);
    }

    IDataView ITransformer.Transform(IDataView input) => Transform(input);

    /// <summary>
    /// Generates <paramref name="count"/> samples without input data, in batches of <see cref="BatchSize"/>. Sample i
    /// starts from the noise of seed <paramref name="seed"/> + i, exactly as row i of <see cref="Transform"/> with
    /// <see cref="Seed"/> = <paramref name="seed"/>.
    /// </summary>
    /// <param name="count">Number of samples, ≥ 1.</param>
    /// <param name="classes">One 0-based class per sample (or −1 for unconditional), or null for unconditional samples.</param>
    /// <param name="seed">Base seed.</param>
    /// <returns>float32 [N, C, H, W] on the CPU in the model's scale: clamped to [−1, 1], or, for a model with a
    /// <see cref="Decoder"/>, the latents as sampled (not clamped, not decoded).</returns>
    public Tensor Generate(int count, IReadOnlyList<int>? classes = null, long seed = 0)
    {
        var flat = GenerateFlat(count, classes, seed, decoded: false);
        TorchBackend.EnsureInitialized();
        return torch.tensor(flat, new long[] { count, Channels, Height, Width });
    }

    /// <summary>
    /// Like <see cref="Generate"/>, as images: float32 [N, <see cref="ImageChannels"/>, <see cref="ImageHeight"/>,
    /// <see cref="ImageWidth"/>] on the CPU in [−1, 1], decoded by the <see cref="Decoder"/> when the model has one
    /// (the same samples as <see cref="Generate"/>'s latents). Use this, not <see cref="Generate"/>, for grids, files and metrics.
    /// </summary>
    public Tensor GenerateDecoded(int count, IReadOnlyList<int>? classes = null, long seed = 0)
    {
        var flat = GenerateFlat(count, classes, seed, decoded: true);
        TorchBackend.EnsureInitialized();
        return torch.tensor(flat, new long[] { count, ImageChannels, ImageHeight, ImageWidth });
    }

    /// <summary>
    /// Like <see cref="Generate"/>, as Bgra32 <see cref="MLImage"/>s of <see cref="ImageHeight"/>×<see cref="ImageWidth"/>
    /// (decoded by the <see cref="Decoder"/> when there is one); the caller disposes them.
    /// </summary>
    public MLImage[] GenerateImages(int count, IReadOnlyList<int>? classes = null, long seed = 0)
    {
        var flat = GenerateFlat(count, classes, seed, decoded: true);
        int size = ImageSize;
        return Enumerable.Range(0, count).Select(i => ToImage(flat.AsSpan(i * size, size))).ToArray();
    }

    /// <summary>Floats per generated (decoded) image.</summary>
    internal int ImageSize => ImageChannels * ImageHeight * ImageWidth;

    /// <summary>
    /// Writes a PNG grid with one row per class (labelled with its name) and <paramref name="imagesPerClass"/> samples
    /// in each; an unconditional model gives a single row.
    /// </summary>
    /// <param name="path">The PNG file to write (replaced atomically).</param>
    /// <param name="imagesPerClass">Samples per row, ≥ 1.</param>
    /// <param name="seed">Base seed of the samples.</param>
    /// <param name="scale">Integer upscaling of each image.</param>
    public void SaveImageGrid(string path, int imagesPerClass = 8, long seed = 0, int scale = 1)
    {
        if (imagesPerClass < 1)
            throw new ArgumentOutOfRangeException(nameof(imagesPerClass), imagesPerClass, "Expected at least one image per class.");
        int rows = Math.Max(1, NumberOfClasses);
        var classes = NumberOfClasses == 0 ? null
            : Enumerable.Range(0, rows).SelectMany(c => Enumerable.Repeat(c, imagesPerClass)).ToArray();
        TorchBackend.EnsureInitialized();
        using var images = torch.tensor(GenerateFlat(rows * imagesPerClass, classes, seed, decoded: true),
            new long[] { rows * imagesPerClass, ImageChannels, ImageHeight, ImageWidth });
        var labels = NumberOfClasses == 0 ? null
            : Enumerable.Range(0, rows).Select(c => ClassNames is { } names && c < names.Count ? names[c] : c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        ImageGrid.SavePng(images, imagesPerClass, path, scale, labels);
    }

    float[] GenerateFlat(int count, IReadOnlyList<int>? classes, long seed, bool decoded)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "Expected at least one sample.");
        if (classes is not null && classes.Count != count)
            throw new ArgumentException($"{classes.Count} classes were given for {count} samples; give one class per sample, or null.", nameof(classes));
        int size = decoded ? ImageSize : Channels * Height * Width;
        var result = new float[(long)count * size];
        for (int start = 0; start < count; start += BatchSize)
        {
            int n = Math.Min(BatchSize, count - start);
            var seeds = new long[n];
            var labels = new int[n];
            for (int i = 0; i < n; i++)
            {
                seeds[i] = seed + start + i;
                int c = classes?[start + i] ?? -1;
                labels[i] = CheckClass(c, "classes", start + i);
            }
            (decoded ? SampleBatch(seeds, labels) : SampleLatents(seeds, labels)).CopyTo(result.AsSpan(start * size));
        }
        return result;
    }

    /// <summary>Maps a requested class to a network label: a class index, or the null label for −1 / unconditional.</summary>
    int CheckClass(long c, string source, long index)
    {
        if (NumberOfClasses == 0) return -1;
        if (c == -1 || c == IndexColumn.Missing)
        {
            if (!_settings.Model.HasNullLabel)
                throw new ArgumentOutOfRangeException(source, $"{source}, row {index}: this model has no null label (it was trained without label dropout), so it cannot generate unconditionally; give a class 0..{NumberOfClasses - 1}.");
            return NumberOfClasses; // the null label: unconditional
        }
        if (c < 0 || c >= NumberOfClasses)
            throw new ArgumentOutOfRangeException(source,
                $"{source}, row {index}: class {c} is out of range; this model has classes 0..{NumberOfClasses - 1} (or −1 / a missing key for unconditional).");
        return (int)c;
    }

    internal int LabelFor(long value, long position) => CheckClass(value, $"Label column '{_settings.LabelColumnName}'", position);

    /// <summary>
    /// One sampler run for a batch, decoded when the model has a <see cref="Decoder"/>: N images of
    /// <see cref="ImageSize"/> floats in [−1, 1].
    /// </summary>
    internal float[] SampleBatch(ReadOnlySpan<long> seeds, ReadOnlySpan<int> labels)
    {
        var samples = SampleLatents(seeds, labels);
        if (_decoder is null) return samples;
        // Model scale [−1, 1] → the latent scale of the data ([InputMinimum, InputMaximum]), then decode.
        float half = 0.5f * (InputMaximum - InputMinimum);
        for (int i = 0; i < samples.Length; i++) samples[i] = InputMinimum + (samples[i] + 1f) * half;
        return VaeRuntime.DecodeLatents(_decoder, samples, seeds.Length, Height, Width);
    }

    /// <summary>
    /// One sampler run for a batch: row i starts from the noise of <paramref name="seeds"/>[i] and has network label
    /// <paramref name="labels"/>[i] (ignored for unconditional models). Returns N·C·H·W floats in the model's scale,
    /// clamped to [−1, 1] unless the model has a decoder (latents are not bounded).
    /// </summary>
    internal float[] SampleLatents(ReadOnlySpan<long> seeds, ReadOnlySpan<int> labels)
    {
        TorchBackend.EnsureInitialized();
        int n = seeds.Length;
        var seedArray = seeds.ToArray();
        var labelArray = labels.ToArray();
        lock (_gate)
        {
            Interlocked.Increment(ref _samplerRuns);
            using var scope = NewDisposeScope();
            var device = _network.parameters().First().device;
            var shape = new long[] { 1, Channels, Height, Width };
            var noise = new Tensor[n];
            // One generator per row: its starting noise, then (DDPM) the fresh noise of every step, so a row's sample depends on its seed only.
            var generators = seedArray.Select(seed => new Generator(unchecked((ulong)seed), torch.CPU)).ToArray();
            try
            {
                for (int i = 0; i < n; i++) noise[i] = randn(shape, generator: generators[i]);
                var latents = torch.cat(noise, 0).to(device);
                Tensor? y = NumberOfClasses > 0 ? torch.tensor(labelArray.Select(l => (long)l).ToArray(), device: device) : null;
                double guidance = y is null ? 1.0 : _settings.GuidanceScale;
                if (guidance != 1.0 && _network.NullLabel < 0)
                    throw new ArgumentException($"Guidance scale {guidance} needs the null label, which this model has not (it was trained without label dropout); use guidance 1.");
                Tensor samples;
                if (_settings.Solver == SamplerSolver.Ddpm)
                {
                    samples = DdpmSampler.Sample(ModelDenoiser.CreateDdpm(_network), latents, y, new DdpmSchedule(_settings.SamplingSteps),
                        like => torch.cat(generators.Select(g => randn(shape, generator: g)).ToArray(), 0).to(like.device),
                        guidance, _network.NullLabel >= 0 ? _network.NullLabel : null);
                }
                else
                {
                    var options = new SamplerOptions
                    {
                        Steps = _settings.SamplingSteps, Solver = _settings.Solver,
                        SigmaMin = _settings.SigmaMin, SigmaMax = _settings.SigmaMax, Rho = _settings.Rho,
                        GuidanceScale = guidance,
                        GuidanceSigmaMin = _settings.GuidanceSigmaMin, GuidanceSigmaMax = _settings.GuidanceSigmaMax ?? double.PositiveInfinity,
                        AlternatingShift = _settings.AlternatingShift,
                        AlternatingShiftSigmaMax = _settings.AlternatingShiftSigmaMax ?? double.PositiveInfinity,
                        NullLabel = y is null || _network.NullLabel < 0 ? null : _network.NullLabel,
                    };
                    samples = EdmSampler.Sample(ModelDenoiser.Create(_network, _settings.SigmaData), latents, y, options);
                }
                if (_decoder is null) samples = samples.clamp(-1f, 1f);
                return samples.cpu().contiguous().data<float>().ToArray();
            }
            finally
            {
                foreach (var g in generators) g.Dispose();
            }
        }
    }

    /// <summary>A Bgra32 image of one generated image (<see cref="ImageSize"/> floats in [−1, 1]); grey is replicated to B, G and R.</summary>
    internal MLImage ToImage(ReadOnlySpan<float> sample)
    {
        int plane = ImageHeight * ImageWidth, channels = ImageChannels;
        var bytes = new byte[plane * 4];
        for (int i = 0; i < plane; i++)
        {
            byte r = ToByte(sample[i]);
            byte g = channels == 3 ? ToByte(sample[plane + i]) : r;
            byte b = channels == 3 ? ToByte(sample[2 * plane + i]) : r;
            bytes[4 * i] = b;
            bytes[4 * i + 1] = g;
            bytes[4 * i + 2] = r;
            bytes[4 * i + 3] = 255;
        }
        return MLImage.CreateFromPixels(ImageWidth, ImageHeight, MLPixelFormat.Bgra32, bytes);
    }

    static byte ToByte(float v) => float.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(MathF.Round((v + 1f) * 127.5f), 0f, 255f);

    /// <summary>The output column types: the image and the pixel vector.</summary>
    internal (ImageDataViewType Image, VectorDataViewType Pixels) OutputTypes() =>
        (new ImageDataViewType(ImageHeight, ImageWidth), new VectorDataViewType(NumberDataViewType.Single, ImageChannels, ImageHeight, ImageWidth));

    /// <summary>Finds and checks the label and seed columns an input must have; −1 when not used.</summary>
    internal (int Label, int Seed) CheckInputColumns(DataViewSchema schema)
    {
        int label = -1, seed = -1;
        if (LabelColumnName is { } labelName)
        {
            var column = schema.GetColumnOrNull(labelName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Label column '{labelName}' was not found; this model is conditional ({NumberOfClasses} classes) and generates one image per row " +
                    $"of the class in that column ({IndexColumn.Expected}). The data has: {Trainers.ImageColumnReader.Describe(schema)}.");
            if (!IndexColumn.IsSupported(column.Type))
                throw new ArgumentOutOfRangeException(nameof(schema), $"Label column '{labelName}' has type {column.Type}; expected {IndexColumn.Expected}.");
            label = column.Index;
        }
        if (SeedColumnName is { } seedName)
        {
            var column = schema.GetColumnOrNull(seedName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Seed column '{seedName}' was not found; expected a whole-number column of per-row seeds. The data has: {Trainers.ImageColumnReader.Describe(schema)}.");
            if (column.Type is KeyDataViewType || !IndexColumn.IsSupported(column.Type))
                throw new ArgumentOutOfRangeException(nameof(schema), $"Seed column '{seedName}' has type {column.Type}; expected a whole number (Int32, Int64, …).");
            seed = column.Index;
        }
        return (label, seed);
    }

    // ------------------------------------------------------------------ save / load

    /// <summary>Writes config.json, model.safetensors (the network's weights) and, with a decoder, vae.safetensors into the model zip.</summary>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        // *** Binary format ***
        // int: format version (1); the rest is in two binary streams: config.json (UTF-8 JSON of the settings)
        // and model.safetensors (the network's state dict, safetensors format).
        ctx.Writer.Write(1);
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(_settings, Checkpoint.Json));
        ctx.SaveBinaryStream(ConfigStream, w => w.Write(json));
        byte[] weights;
        lock (_gate)
        {
            using var scope = NewDisposeScope();
            weights = SafeTensors.ToBytes(_network.state_dict(), new Dictionary<string, string> { ["format"] = McDitModelSettings.CurrentFormat });
        }
        ctx.SaveBinaryStream(WeightsStream, w => w.Write(weights));
        if (_decoder is not null)
        {
            var vae = VaeRuntime.ToBytes(_decoder);
            ctx.SaveBinaryStream(DecoderStream, w => w.Write(vae));
        }
    }

    // Factory method for SignatureLoadModel. Everything is checked before the network is built: the settings' bounds,
    // that the weights hold as many elements as the settings imply, and each tensor's name, dtype, shape and finiteness.
    static McDitModel Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        env.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel(GetVersionInfo());
        int format = ctx.Reader.ReadInt32();
        if (format != 1)
            throw new InvalidDataException($"The McDit model in this zip has binary format {format}; this version reads format 1.");
        const string settingsSource = "model zip entry " + ConfigStream, weightsSource = "model zip entry " + WeightsStream;
        var settings = JsonFile.Parse<McDitModelSettings>(ReadStream(ctx, ConfigStream), settingsSource, Checkpoint.Json);
        try { settings.Validated(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{settingsSource}: {e.Message}", e); }
        var weights = ReadStream(ctx, WeightsStream);
        SafeTensorsHeader header;
        using (var ms = new MemoryStream(weights, writable: false)) header = SafeTensors.ReadHeader(ms, weightsSource);
        long expected = settings.Model.StateElementCount(), found = TensorChecks.ElementCount(header);
        if (found != expected)
            throw new InvalidDataException($"{weightsSource} holds {found:N0} elements; the model's {ConfigStream} implies {expected:N0}. The zip is damaged.");
        TorchBackend.EnsureInitialized();
        var network = new MaskedDiffusionTransformer(settings.Model);
        try
        {
            TensorChecks.CheckHeader(header, TensorChecks.Expected(network.state_dict()), weightsSource);
            using (var content = SafeTensors.Load(weights, weightsSource))
                Checkpoint.LoadInto(network, content.Tensors, weightsSource);
            // A model trained on a GPU loads wherever it is read: "cpu" stays on the CPU, anything else means CUDA when available.
            network.to(string.Equals(settings.Device, "cpu", StringComparison.OrdinalIgnoreCase) ? torch.CPU : TorchBackend.ResolveDevice("auto"));
        }
        catch
        {
            network.Dispose();
            throw;
        }
        var decoder = settings.HasLatentDecoder
            ? VaeRuntime.FromBytes(ReadStream(ctx, DecoderStream), $"model zip entry {DecoderStream}")
            : null;
        return new McDitModel(env, settings, network, decoder: decoder);
    }

    /// <summary>
    /// Loads the generator of a model zip written by <c>MLContext.Model.Save</c> (or <see cref="McDitModelFile.Save"/>): the
    /// zip is verified first (CRC-32 of every entry) and a failure names the file and the entry.
    /// </summary>
    /// <param name="path">The model zip.</param>
    /// <param name="device">Where to put the network (cpu, cuda, cuda:N, auto); null keeps the zip's own choice.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The zip is damaged or holds no McDit generator.</exception>
    public static McDitModel Load(string path, string? device = null) => McDitModelFile.LoadGenerator(new MLContext(), path, device);

    /// <summary>Moves the (shared) network, and the decoder, to <paramref name="device"/>.</summary>
    internal void MoveTo(Device device)
    {
        lock (_gate)
        {
            _network.to(device);
            _decoder?.to(device);
        }
    }

    static byte[] ReadStream(ModelLoadContext ctx, string name)
    {
        byte[]? bytes = null;
        if (!ctx.TryLoadBinaryStream(name, r =>
            {
                using var ms = new MemoryStream();
                r.BaseStream.CopyTo(ms);
                bytes = ms.ToArray();
            }) || bytes is null)
            throw new InvalidDataException($"The McDit model in this zip has no '{name}' entry; the model file is incomplete.");
        return bytes;
    }

    // Factory method for SignatureLoadDataTransform.
    static IDataTransform Create(IHostEnvironment env, ModelLoadContext ctx, IDataView input)
        => Create(env, ctx).MakeDataTransform(input);

    // Factory method for SignatureLoadRowMapper.
    static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema)
        => Create(env, ctx).MakeRowMapper(inputSchema);

    /// <summary>The row-by-row mapper (one sampler run per row), used by <c>PredictionEngine</c> and for schemas.</summary>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    sealed class Mapper : MapperBase
    {
        readonly McDitModel _parent;
        readonly int _labelIndex, _seedIndex;

        public Mapper(McDitModel parent, DataViewSchema inputSchema)
            : base(parent.Host.Register(nameof(Mapper)), inputSchema, parent)
        {
            _parent = parent;
            (_labelIndex, _seedIndex) = parent.CheckInputColumns(inputSchema);
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore()
        {
            var (image, pixels) = _parent.OutputTypes();
            return new[]
            {
                new DataViewSchema.DetachedColumn(_parent.GeneratedImageColumnName, image),
                new DataViewSchema.DetachedColumn(_parent.GeneratedPixelsColumnName, pixels),
            };
        }

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            bool any = activeOutput(0) || activeOutput(1);
            return col => any && (col == _labelIndex || col == _seedIndex);
        }

        protected override void SaveModel(ModelSaveContext ctx) => _parent.SaveModel(ctx);

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var state = new RowState(_parent, input, _labelIndex, _seedIndex);
            var getters = new Delegate[2];
            for (int i = 0; i < getters.Length; i++)
                if (activeOutput(i)) getters[i] = MakeGetter(state, i);
            return getters;
        }

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            return MakeGetter(new RowState(_parent, input, _labelIndex, _seedIndex), iinfo);
        }

        Delegate MakeGetter(RowState state, int iinfo)
        {
            if (iinfo == 0)
            {
                ValueGetter<MLImage> image = (ref MLImage dst) => dst = _parent.ToImage(state.Current());
                return image;
            }
            ValueGetter<VBuffer<float>> pixels = (ref VBuffer<float> dst) => _parent.CopyPixels(state.Current(), ref dst);
            return pixels;
        }

        // Generates the current row once (a batch of one) and shares it between the two getters.
        sealed class RowState
        {
            readonly McDitModel _parent;
            readonly DataViewRow _input;
            readonly Func<long>? _label, _seed;
            long _position = long.MinValue;
            float[] _sample = Array.Empty<float>();

            public RowState(McDitModel parent, DataViewRow input, int labelIndex, int seedIndex)
            {
                _parent = parent;
                _input = input;
                if (labelIndex >= 0) _label = IndexColumn.CreateGetter(input, input.Schema[labelIndex]);
                if (seedIndex >= 0) _seed = IndexColumn.CreateGetter(input, input.Schema[seedIndex]);
            }

            public float[] Current()
            {
                long position = _input.Position;
                if (position == _position && _sample.Length > 0) return _sample;
                long seed = _seed is null ? _parent.Seed + position : _parent.ReadSeed(_seed(), position);
                int label = _label is null ? -1 : _parent.LabelFor(_label(), position);
                _sample = _parent.SampleBatch(new[] { seed }, new[] { label });
                _position = position;
                return _sample;
            }
        }
    }

    internal long ReadSeed(long value, long position) => value != IndexColumn.Missing ? value
        : throw new InvalidOperationException($"Seed column '{SeedColumnName}', row {position}: the seed is missing or not a whole number.");
}
