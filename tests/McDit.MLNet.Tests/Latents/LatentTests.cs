using McDit.MLNet.Generation;
using McDit.MLNet.Latents;
using McDit.MLNet.Tests.Trainers;
using McDit.MLNet.Trainers;
using McDit.Torch.Vae;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using Xunit;

namespace McDit.MLNet.Tests.Latents;

/// <summary>Latent encoding, decoding and caching with a tiny random-weight VAE (f = 2: 16×16 RGB → 4×8×8).</summary>
public sealed class LatentTests : IDisposable
{
    const int Side = 16, Rows = 6, Classes = 3;
    readonly string _folder = Path.Combine(Path.GetTempPath(), "mcdit-latents-" + Guid.NewGuid().ToString("N"));
    readonly AutoencoderKL _vae;

    public LatentTests()
    {
        Directory.CreateDirectory(_folder);
        McDit.Torch.Runtime.TorchBackend.EnsureInitialized();
        torch.manual_seed(7);
        _vae = new AutoencoderKL(new AutoencoderKLConfig
        {
            BlockOutChannels = new[] { 32, 64 }, LayersPerBlock = 1, NormNumGroups = 32, LatentChannels = 4, SampleSize = Side,
        });
        _vae.eval();
        _vae.Save(VaeFolder);
    }

    string VaeFolder => Path.Combine(_folder, "vae");

    public void Dispose()
    {
        _vae.Dispose();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }

    public sealed class Row
    {
        [VectorType(3, Side, Side)] public float[] Image { get; set; } = Array.Empty<float>();
        [KeyType(Classes)] public uint Label { get; set; }
    }

    static IDataView Images(MLContext ml)
    {
        var random = new Random(5);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, Rows).Select(i => new Row
        {
            Image = Enumerable.Range(0, 3 * Side * Side).Select(_ => (float)random.NextDouble()).ToArray(),
            Label = (uint)(i % Classes),
        }).ToList());
    }

    static List<float[]> Column(IDataView data, string name, Random? rand = null)
    {
        var column = data.Schema[name];
        using var cursor = data.GetRowCursor(new[] { column }, rand);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var result = new List<float[]>();
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            result.Add(value.DenseValues().ToArray());
        }
        return result;
    }

    static MLContext Ml() => new(seed: 1);

    [Fact]
    public void EncodeLatents_WithVae_GivesScaledPosteriorMeans_Deterministically()
    {
        var ml = Ml();
        var data = Images(ml);
        var transformer = ml.McDit().Transforms.EncodeLatents("Latent", "Image", vaePath: VaeFolder, outputMoments: true).Fit(data);
        var output = transformer.Transform(data);
        var type = (VectorDataViewType)output.Schema["Latent"].Type;
        Assert.Equal(new[] { 4, Side / 2, Side / 2 }, type.Dimensions.ToArray());
        var latents = Column(output, "Latent");
        Assert.Equal(Rows, latents.Count);
        Assert.Equal(latents, Column(output, "Latent"));
        var means = Column(output, "LatentMean");
        for (int i = 0; i < latents[0].Length; i++) Assert.Equal(means[0][i] * 0.18215f, latents[0][i], 1e-5f);

        // The same as the VAE on the [−1, 1] image.
        var pixels = Column(data, "Image")[0].Select(v => 2 * v - 1).ToArray();
        using var direct = _vae.EncodeLatents(torch.tensor(pixels, new long[] { 1, 3, Side, Side }));
        var expected = direct.data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], latents[0][i], 1e-4f);

        // Sampled latents: reproducible per seed, different from the mean.
        var sampled = Column(ml.McDit().Transforms.EncodeLatents("Latent", "Image", _vae, sampleLatent: true, seed: 3).Fit(data).Transform(data), "Latent");
        Assert.Equal(sampled, Column(ml.McDit().Transforms.EncodeLatents("Latent", "Image", _vae, sampleLatent: true, seed: 3).Fit(data).Transform(data), "Latent"));
        Assert.NotEqual(latents[0], sampled[0]);
    }

    [Fact]
    public void EncodeLatents_WithoutVae_IsTheIdentity()
    {
        var ml = Ml();
        var data = Images(ml);
        var output = ml.McDit().Transforms.EncodeLatents("Latent", "Image").Fit(data).Transform(data);
        Assert.Equal(data.Schema["Image"].Type, output.Schema["Latent"].Type);
        Assert.Equal(Column(data, "Image"), Column(output, "Latent"));
    }

    [Fact]
    public void EncodeLatents_SavesAndLoadsWithTheVaeWeights()
    {
        var ml = Ml();
        var data = Images(ml);
        var model = ml.McDit().Transforms.EncodeLatents("Latent", "Image", _vae, sampleLatent: true, seed: 2, outputMoments: true).Fit(data);
        var path = Path.Combine(_folder, "encode.zip");
        ml.Model.Save(model, data.Schema, path);
        var loaded = Ml().Model.Load(path, out _);
        var before = model.Transform(data);
        var after = loaded.Transform(data);
        Assert.Equal(Column(before, "Latent"), Column(after, "Latent"));
        Assert.Equal(Column(before, "LatentLogVar"), Column(after, "LatentLogVar"));
    }

    [Fact]
    public void LatentModel_EndToEnd_GeneratesDecodedImages_AndSavesTheDecoder()
    {
        var ml = Ml();
        var data = Images(ml);
        var options = McDitTestData.Options(steps: 2);
        options.ImageColumnName = "Latent";
        options.LatentDecoderPath = VaeFolder;
        var pipeline = ml.McDit().Transforms.EncodeLatents("Latent", "Image", vaePath: VaeFolder)
            .Append(ml.McDit().Trainers.DiffusionTransformer(options));
        var chain = pipeline.Fit(data);
        var generator = chain.LastTransformer;
        Assert.NotNull(generator.Decoder);
        Assert.Equal((4, Side / 2), (generator.Channels, generator.Height));
        Assert.Equal((3, Side, Side), (generator.ImageChannels, generator.ImageHeight, generator.ImageWidth));

        using (var latents = generator.Generate(2, new[] { 0, 1 }))
            Assert.Equal(new long[] { 2, 4, Side / 2, Side / 2 }, latents.shape);

        var classes = McDitTestData.Classes_(ml, 0, 1);
        var generated = generator.Transform(classes);
        var pixels = Column(generated, "GeneratedPixels");
        Assert.All(pixels, p => Assert.Equal(3 * Side * Side, p.Length));
        Assert.All(pixels.SelectMany(p => p), v => Assert.InRange(v, 0f, 1f));
        var imageType = (Microsoft.ML.Transforms.Image.ImageDataViewType)generated.Schema["GeneratedImage"].Type;
        Assert.Equal((Side, Side), (imageType.Height, imageType.Width));
        using (var image = generator.GenerateImages(1, new[] { 2 })[0])
            Assert.Equal((Side, Side), (image.Width, image.Height));

        var path = Path.Combine(_folder, "latent-model.zip");
        ml.Model.Save(generator, classes.Schema, path);
        var loaded = (McDitModel)Ml().Model.Load(path, out _);
        Assert.NotNull(loaded.Decoder);
        Assert.Equal(pixels, Column(loaded.Transform(classes), "GeneratedPixels"));
    }

    [Fact]
    public void LatentCache_RoundTrips_AndSamplesAFreshLatentPerCursor()
    {
        var ml = Ml();
        var data = Images(ml);
        var file = Path.Combine(_folder, "cache.bin");
        Assert.Equal(Rows, ml.McDit().Data.CacheLatents(data, VaeFolder, file, batchSize: 4));

        var cache = ml.McDit().Data.LoadLatentCache(file, seed: 9);
        Assert.Equal(Rows, cache.GetRowCount());
        Assert.True(cache.CanShuffle);
        Assert.Equal(new[] { "0", "1", "2" }.Length, cache.ClassNames.Count);

        // Mean and log-variance are stored exactly as the VAE gives them.
        var pixels = Column(data, "Image").SelectMany(p => p.Select(v => 2 * v - 1)).ToArray();
        var (mean, logVar) = _vae.Encode(torch.tensor(pixels, new long[] { Rows, 3, Side, Side }));
        int size = 4 * (Side / 2) * (Side / 2);
        var meanFlat = mean.data<float>().ToArray();
        var logVarFlat = logVar.data<float>().ToArray();
        var storedMeans = Column(cache, "LatentMean");
        var storedLogVars = Column(cache, "LatentLogVar");
        for (int r = 0; r < Rows; r++)
        {
            Assert.Equal(meanFlat.AsSpan(r * size, size).ToArray(), storedMeans[r]);
            Assert.Equal(logVarFlat.AsSpan(r * size, size).ToArray(), storedLogVars[r]);
        }
        mean.Dispose();
        logVar.Dispose();

        // Labels: a key with the class names kept.
        var labels = ml.Data.CreateEnumerable<LabelOnly>(cache, reuseRowObject: false).Select(l => l.Label).ToArray();
        Assert.Equal(Enumerable.Range(0, Rows).Select(i => (uint)(i % Classes + 1)), labels);

        // Fresh latents per cursor, reproducible per seed.
        var epoch0 = Column(cache, "Latent");
        var epoch1 = Column(cache, "Latent");
        Assert.NotEqual(epoch0[0], epoch1[0]);
        var again = ml.McDit().Data.LoadLatentCache(file, seed: 9);
        Assert.Equal(epoch0, Column(again, "Latent"));
        Assert.Equal(Column(cache, "Latent", new Random(4)), Column(again, "Latent", new Random(4)));
        Assert.NotEqual(epoch0[0], Column(ml.McDit().Data.LoadLatentCache(file, seed: 10), "Latent")[0]);

        // Trains directly on the cache.
        var options = McDitTestData.Options(steps: 2);
        options.ImageColumnName = "Latent";
        options.LatentDecoder = _vae;
        var model = ml.McDit().Trainers.DiffusionTransformer(options).Fit(cache);
        Assert.Equal(Classes, model.NumberOfClasses);
        Assert.Equal(Side, model.ImageHeight);

        // A truncated file fails with its name.
        var truncated = Path.Combine(_folder, "truncated.bin");
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(truncated, bytes.AsSpan(0, bytes.Length - 10).ToArray());
        var error = Assert.Throws<InvalidDataException>(() => ml.McDit().Data.LoadLatentCache(truncated));
        Assert.Contains(truncated, error.Message);
        Assert.Contains("truncated", error.Message);
    }

    public sealed class LabelOnly
    {
        public uint Label { get; set; }
    }
}
