using System.Globalization;
using McDit.MLNet.Latents;
using McDit.MLNet.Trainers;
using McDit.Torch.IO;
using McDit.Torch.Vae;

namespace Microsoft.ML;

public sealed partial class McDitDataCatalog
{
    /// <summary>
    /// Encodes every image of <paramref name="images"/> once with <paramref name="vae"/> and writes the posteriors (mean
    /// and log-variance, unscaled) and labels to a latent cache file, which <see cref="LoadLatentCache"/> streams for
    /// training with a fresh latent sample every epoch. The file is replaced atomically.
    /// </summary>
    /// <param name="images">The images: an MLImage column or a known-size float vector [C, H, W] with C = the VAE's input channels.</param>
    /// <param name="vae">The autoencoder (used on its device; put in eval mode).</param>
    /// <param name="cacheFile">The cache file to write.</param>
    /// <param name="imageColumnName">The image column.</param>
    /// <param name="labelColumnName">A key or class-index column (class names come from the key values), or null for no labels.</param>
    /// <param name="numberOfClasses">Classes of a numeric label column; 0 takes them from the key type.</param>
    /// <param name="batchSize">Images encoded per VAE call.</param>
    /// <param name="inputMinimum">Pixel value of black in a float column (mapped to −1).</param>
    /// <param name="inputMaximum">Pixel value of white in a float column (mapped to +1).</param>
    /// <returns>The number of rows written.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing, of the wrong type, or does not fit the VAE.</exception>
    /// <exception cref="InvalidOperationException">A row holds a bad value (pixel out of range, missing label).</exception>
    public long CacheLatents(IDataView images, AutoencoderKL vae, string cacheFile, string imageColumnName = "Image",
        string? labelColumnName = "Label", int numberOfClasses = 0, int batchSize = 16, float inputMinimum = 0f, float inputMaximum = 1f)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheFile);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Expected at least one image per batch.");
        var options = new McDitTrainer.Options
        {
            ImageColumnName = imageColumnName, LabelColumnName = labelColumnName, NumberOfClasses = numberOfClasses,
            InputMinimum = inputMinimum, InputMaximum = inputMaximum, BatchSize = batchSize,
        };
        var plan = TrainingPlan.Create(images.Schema, options);
        var config = vae.Config;
        int f = config.DownsamplingFactor;
        var shape = plan.Shape;
        if (shape.Channels != config.InChannels || shape.Height % f != 0 || shape.Width % f != 0)
            throw new ArgumentOutOfRangeException(nameof(images),
                $"Image column '{imageColumnName}' holds {shape.Channels}×{shape.Height}×{shape.Width} images; the VAE expects " +
                $"{config.InChannels} channels and a height and width that are multiples of {f}.");
        var classNames = plan.NumberOfClasses == 0 ? Array.Empty<string>()
            : plan.ClassNames ?? Enumerable.Range(0, plan.NumberOfClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        int latentSize = config.LatentChannels * (shape.Height / f) * (shape.Width / f);
        long rows = 0;
        var buffer = new float[batchSize * shape.Size];
        var labels = new long[batchSize];
        AtomicFile.Write(cacheFile, stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            LatentCacheFile.WriteHeader(writer, config.LatentChannels, shape.Height / f, shape.Width / f, config.ScalingFactor,
                config.ShiftFactor, classNames);
            using var cursor = images.GetRowCursor(plan.InputColumns(images.Schema));
            var reader = plan.CreateReader(cursor, options);
            int n;
            while ((n = reader.ReadBatch(buffer, labels, batchSize)) > 0)
            {
                var (mean, logVar) = VaeRuntime.EncodeMoments(vae, buffer, n, shape.Channels, shape.Height, shape.Width);
                for (int i = 0; i < n; i++)
                    LatentCacheFile.WriteRow(writer, plan.NumberOfClasses == 0 ? -1 : (int)labels[i],
                        mean.AsSpan(i * latentSize, latentSize), logVar.AsSpan(i * latentSize, latentSize));
                rows += n;
            }
            writer.Flush();
            LatentCacheFile.FinishRows(stream, rows);
        });
        return rows;
    }

    /// <summary>
    /// Like <see cref="CacheLatents(IDataView, AutoencoderKL, string, string, string?, int, int, float, float)"/> with the VAE
    /// loaded from a diffusers folder or a <c>.safetensors</c> file (on the CPU).
    /// </summary>
    /// <param name="images">The images.</param>
    /// <param name="vaePath">The VAE folder or weights file.</param>
    /// <param name="cacheFile">The cache file to write.</param>
    /// <param name="imageColumnName">The image column.</param>
    /// <param name="labelColumnName">The label column, or null.</param>
    /// <param name="numberOfClasses">Classes of a numeric label column; 0 takes them from the key type.</param>
    /// <param name="batchSize">Images encoded per VAE call.</param>
    /// <returns>The number of rows written.</returns>
    public long CacheLatents(IDataView images, string vaePath, string cacheFile, string imageColumnName = "Image",
        string? labelColumnName = "Label", int numberOfClasses = 0, int batchSize = 16)
    {
        using var vae = VaeRuntime.Load(vaePath);
        return CacheLatents(images, vae, cacheFile, imageColumnName, labelColumnName, numberOfClasses, batchSize);
    }

    /// <summary>
    /// Opens a latent cache written by <c>CacheLatents</c> as a data view with columns <c>Latent</c> (a fresh sample of
    /// each row's posterior per cursor, scaled for the diffusion model), <c>LatentMean</c>, <c>LatentLogVar</c> and
    /// <c>Label</c> (see <see cref="LatentCacheDataView"/>). Train on it with <c>ImageColumnName = "Latent"</c> and
    /// the VAE as the trainer's <c>LatentDecoderPath</c>.
    /// </summary>
    /// <param name="cacheFile">The cache file.</param>
    /// <param name="seed">Seed of the sampled latents.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a latent cache, or is truncated; the message names it.</exception>
    public LatentCacheDataView LoadLatentCache(string cacheFile, long seed = 0)
        => new(LatentCacheFile.Open(cacheFile), seed);
}
