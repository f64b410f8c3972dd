using McDit.MLNet.Trainers;
using McDit.Torch.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

public sealed partial class McDitCatalog
{
    /// <summary>Trainers: the diffusion transformer (DiT / MaskDiT / MC-DiT), whose model is the image generator.</summary>
    public McDitTrainersCatalog Trainers => new(Environment);
}

/// <summary>McDit's trainers: <c>mlContext.McDit().Trainers</c>.</summary>
public sealed class McDitTrainersCatalog
{
    readonly IHostEnvironment _env;

    internal McDitTrainersCatalog(IHostEnvironment env) => _env = env;

    /// <summary>
    /// Trains a masked diffusion transformer on an image column, with the given options, and returns a generator
    /// (<see cref="McDit.MLNet.Generation.McDitModel"/>) that maps rows with a class (and optional seed) to generated images.
    /// </summary>
    /// <param name="options">Columns, image shape and scaling, model, method, optimisation and generation settings.</param>
    /// <example><code>
    /// var trainer = mlContext.McDit().Trainers.DiffusionTransformer(new McDitTrainer.Options
    /// {
    ///     ImageColumnName = "Pixels", LabelColumnName = "Label", Method = TrainingMethod.McDiT,
    ///     Model = "Tiny/2", NumberOfSteps = 2000, BatchSize = 64, LearningRate = 3e-4,
    /// });
    /// var generator = trainer.Fit(data);
    /// </code></example>
    public McDitTrainer DiffusionTransformer(McDitTrainer.Options options)
    {
        Contracts.CheckValue(options, nameof(options));
        return new McDitTrainer(_env, options);
    }

    /// <summary>
    /// Trains a masked diffusion transformer on an image column and returns a generator
    /// (<see cref="McDit.MLNet.Generation.McDitModel"/>). Other settings keep the defaults of <see cref="McDitTrainer.Options"/>.
    /// </summary>
    /// <param name="imageColumnName">An MLImage column, or a CHW float vector with values in [0, 1] (ExtractPixels with scaleImage 1/255).</param>
    /// <param name="labelColumnName">A key or class-index column; null trains an unconditional model.</param>
    /// <param name="method">DiT, MaskDiT or MC-DiT (with their default switches).</param>
    /// <param name="model">The DiT preset: "Tiny/2", "S/2", "B/4" …</param>
    /// <param name="numberOfSteps">Optimizer steps.</param>
    /// <param name="batchSize">Rows per step.</param>
    /// <param name="learningRate">AdamW learning rate.</param>
    /// <param name="numberOfClasses">Classes for a numeric label column; 0 takes them from the key type.</param>
    /// <param name="seed">Seed of the run; null takes the MLContext's seed.</param>
    /// <param name="device">"cpu", "cuda", "cuda:N" or "auto".</param>
    /// <example><code>
    /// var pipeline = mlContext.Transforms.LoadImages("Image", imageFolder, "Path")
    ///     .Append(mlContext.Transforms.ResizeImages("Image", 32, 32))
    ///     .Append(mlContext.Transforms.Conversion.MapValueToKey("Label"))
    ///     .Append(mlContext.McDit().Trainers.DiffusionTransformer("Image", "Label", numberOfSteps: 5000));
    /// var model = pipeline.Fit(data);
    /// mlContext.Model.Save(model, data.Schema, "mcdit.zip");
    /// </code></example>
    public McDitTrainer DiffusionTransformer(string imageColumnName = "Image", string? labelColumnName = "Label",
        TrainingMethod method = TrainingMethod.McDiT, string model = "Tiny/2", int numberOfSteps = 1000, int batchSize = 64,
        double learningRate = 1e-4, int numberOfClasses = 0, int? seed = null, string device = "auto")
        => DiffusionTransformer(new McDitTrainer.Options
        {
            ImageColumnName = imageColumnName,
            LabelColumnName = labelColumnName,
            Method = method,
            Model = model,
            NumberOfSteps = numberOfSteps,
            BatchSize = batchSize,
            LearningRate = learningRate,
            NumberOfClasses = numberOfClasses,
            Seed = seed,
            Device = device,
        });
}
