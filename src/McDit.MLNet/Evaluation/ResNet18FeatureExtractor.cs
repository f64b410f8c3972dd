using McDit.Torch.Metrics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Evaluation;

/// <summary>
/// ImageNet ResNet-18 features (512-d, the global-average-pooled last block) through ML.NET: the ONNX models of
/// Microsoft.ML.DnnImageFeaturizer.ResNet18, run by ML.NET's <c>DnnFeaturizeImage</c> after <c>ResizeImages</c>
/// (224×224) and <c>ExtractPixels</c> (planar RGB, 0–255; the package's preprocessing model normalises). The basis
/// of FD-ResNet18. Tensors in [-1, 1] are turned into 8-bit images first; grey images get three equal channels.
/// </summary>
public sealed class ResNet18FeatureExtractor : IFeatureExtractor
{
    /// <summary>The id written into reference statistics made with this extractor.</summary>
    public const string ExtractorId = "resnet18-imagenet-onnx/pool-512@224";

    /// <summary>Name of the folder, beside the application, where the package puts its ONNX models.</summary>
    public const string ModelFolderName = "DnnImageModels";

    /// <summary>Input side the network expects.</summary>
    public const int InputSize = 224;

    /// <summary>Feature dimension.</summary>
    public const int FeatureDimension = 512;

    internal const string ImageColumn = "Image";
    internal const string FeaturesColumn = "ResNet18Features";

    readonly MLContext _ml;
    readonly ITransformer _transformer;

    ResNet18FeatureExtractor(MLContext ml, ITransformer transformer, string modelDirectory)
    {
        _ml = ml;
        _transformer = transformer;
        ModelDirectory = modelDirectory;
    }

    /// <summary>Loads the featurizer.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="modelDirectory">Folder holding <c>ResNet18Onnx/ResNet18.onnx</c> and
    /// <c>ResNetPrepOnnx/ResNetPreprocess.onnx</c>; null means <c>DnnImageModels</c> beside the application, where
    /// McDit.MLNet's build step copies them, else beside McDit.MLNet.dll, else (a notebook's <c>#r "nuget: …"</c>, which
    /// loads McDit.MLNet from the NuGet packages folder) the Microsoft.ML.DnnImageFeaturizer.ResNet18 package folder.</param>
    /// <exception cref="FileNotFoundException">A model file is missing; the message says which and where it comes from.</exception>
    public static ResNet18FeatureExtractor Create(MLContext mlContext, string? modelDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var dir = Path.GetFullPath(modelDirectory ?? DefaultModelDirectory());
        foreach (var file in new[] { Path.Combine(dir, "ResNet18Onnx", "ResNet18.onnx"), Path.Combine(dir, "ResNetPrepOnnx", "ResNetPreprocess.onnx") })
            if (!File.Exists(file))
                throw new FileNotFoundException(
                    $"ResNet-18 model file '{file}' does not exist. It ships in the NuGet package " +
                    $"{ResNet18PackageId} (tools/{ModelFolderName}), which McDit.MLNet depends on; McDit.MLNet's build step copies it to " +
                    $"'{ModelFolderName}/' in the output of every project that references McDit.MLNet. Restore and build the project " +
                    "(or set McDitCopyResNet18Models back to true), or pass the folder that holds the models as the model directory.", file);
        var pipeline = mlContext.Transforms.ResizeImages("Resized", InputSize, InputSize, ImageColumn)
            .Append(mlContext.Transforms.ExtractPixels("Pixels", "Resized"))
            .Append(mlContext.Transforms.DnnFeaturizeImage(FeaturesColumn,
                m => m.ModelSelector.ResNet18(mlContext, m.OutputColumn, m.InputColumn, dir), "Pixels"));
        var transformer = pipeline.Fit(Images(mlContext, Array.Empty<MLImage>(), 0, 0));
        return new ResNet18FeatureExtractor(mlContext, transformer, dir);
    }

    const string ResNet18PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    // DnnImageModels beside the application; when a host loads McDit.MLNet by path (a plug-in folder), the application
    // is the host and the models lie beside McDit.MLNet.dll instead; when it loads it from the NuGet packages folder
    // (a notebook's #r "nuget: McDit.MLNet"), nothing was copied: the models are in the ResNet-18 package's folder,
    // <packages>/microsoft.ml.dnnimagefeaturizer.resnet18/<version>/tools/DnnImageModels (only read).
    static string DefaultModelDirectory()
    {
        var besideApp = Path.Combine(AppContext.BaseDirectory, ModelFolderName);
        if (Directory.Exists(besideApp)) return besideApp;
        var own = Path.GetDirectoryName(typeof(ResNet18FeatureExtractor).Assembly.Location);
        if (string.IsNullOrEmpty(own)) return besideApp;
        if (Directory.Exists(Path.Combine(own, ModelFolderName))) return Path.Combine(own, ModelFolderName);
        // <packages>/mcdit.mlnet/<version>/lib/<tfm>/McDit.MLNet.dll
        var package = Path.Combine(Path.GetFullPath(Path.Combine(own, "..", "..", "..", "..")), ResNet18PackageId.ToLowerInvariant());
        if (!Directory.Exists(package)) return besideApp;
        return Directory.GetDirectories(package)
            .Select(d => (Dir: Path.Combine(d, "tools", ModelFolderName), Version: Version.TryParse(Path.GetFileName(d), out var v) ? v : null))
            .Where(x => x.Version is not null && Directory.Exists(x.Dir))
            .OrderByDescending(x => x.Version)
            .Select(x => x.Dir)
            .FirstOrDefault() ?? besideApp;
    }

    /// <summary>The folder the ONNX models were loaded from.</summary>
    public string ModelDirectory { get; }

    /// <inheritdoc/>
    public string Id => ExtractorId;

    /// <inheritdoc/>
    public int Dimension => FeatureDimension;

    /// <inheritdoc/>
    public Tensor Extract(Tensor images)
    {
        var mlImages = ImageTensors.ToMLImages(images);
        try
        {
            var view = Images(_ml, mlImages, (int)images.shape[2], (int)images.shape[3]);
            var rows = new List<float[]>(mlImages.Length);
            foreach (var batch in FeatureBatches(view, ImageColumn, int.MaxValue, null)) rows.AddRange(batch);
            return ToTensor(rows);
        }
        finally
        {
            foreach (var m in mlImages) m.Dispose();
        }
    }

    /// <summary>
    /// Streams the features of an image column (<see cref="ImageDataViewType"/>) in batches of
    /// <paramref name="batchSize"/> rows.
    /// </summary>
    internal IEnumerable<List<float[]>> FeatureBatches(IDataView data, string imageColumn, int batchSize,
        IProgress<FeaturizationProgress>? progress, long? total = null)
    {
        if (imageColumn != ImageColumn)
            data = _ml.Transforms.CopyColumns(ImageColumn, imageColumn).Fit(data).Transform(data);
        var featurized = _transformer.Transform(data);
        var column = featurized.Schema[FeaturesColumn];
        using var cursor = featurized.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var buffer = default(VBuffer<float>);
        var batch = new List<float[]>();
        long done = 0;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            batch.Add(buffer.DenseValues().ToArray());
            if (batch.Count == batchSize)
            {
                done += batch.Count;
                yield return batch;
                progress?.Report(new FeaturizationProgress(done, total));
                batch = new List<float[]>();
            }
        }
        if (batch.Count > 0)
        {
            done += batch.Count;
            yield return batch;
            progress?.Report(new FeaturizationProgress(done, total));
        }
    }

    internal static Tensor ToTensor(List<float[]> rows)
    {
        var flat = new double[rows.Count * FeatureDimension];
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].Length != FeatureDimension)
                throw new InvalidOperationException($"The ResNet-18 featurizer returned {rows[i].Length} values; expected {FeatureDimension}.");
            for (int j = 0; j < FeatureDimension; j++) flat[i * FeatureDimension + j] = rows[i][j];
        }
        return tensor(flat, new long[] { rows.Count, FeatureDimension }, dtype: float64);
    }

    sealed class ImageRow
    {
        [ImageType(1, 1)] public MLImage? Image { get; set; } // the real size is set in Images()
    }

    static IDataView Images(MLContext ml, MLImage[] images, int height, int width)
    {
        height = Math.Max(height, 1);
        width = Math.Max(width, 1);
        // The column type of an MLImage member comes from its [ImageType(h, w)] attribute; for a size known only at
        // run time, register the pair ML.NET looks up (idempotent) and set the type on the schema definition.
        var type = new ImageDataViewType(height, width);
        DataViewTypeManager.Register(type, typeof(MLImage), new ImageTypeAttribute(height, width));
        var schema = SchemaDefinition.Create(typeof(ImageRow));
        schema[ImageColumn].ColumnType = type;
        return ml.Data.LoadFromEnumerable(images.Select(i => new ImageRow { Image = i }), schema);
    }

    /// <summary>Nothing to release: ML.NET owns the ONNX sessions.</summary>
    public void Dispose() { }
}
