using System.Globalization;
using McDit.Torch.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Metrics;

/// <summary>
/// The small convolutional classifier behind the class-accuracy metric ("classification accuracy score" of
/// class-conditional generators): two 3×3 convolutions with ReLU and 2×2 max pooling, an adaptive 7×7 average pool (the identity at 28×28) and
/// a two-layer head (<c>conv1</c>, <c>conv2</c>, <c>fc1</c>, <c>fc2</c>). Inputs are images [N, C, H, W] in [-1, 1]
/// of the size it was trained at. Train one with <see cref="ImageClassifierTraining.Train"/> (or get a cached one with
/// <see cref="ImageClassifierTraining.GetOrTrain"/>) and score images with <see cref="ClassAccuracy.Compute"/>.
/// </summary>
public sealed class ImageClassifier : nn.Module<Tensor, Tensor>
{
    const string FormatKey = "format", FormatValue = "mcdit-image-classifier/1";

    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Linear fc1;
    private readonly Linear fc2;

    /// <summary>Creates an untrained classifier (PyTorch's default initialisation; training re-initialises it from its seed).</summary>
    /// <param name="channels">Image channels (1 or 3).</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="numClasses">Number of classes (at least 2).</param>
    /// <param name="filters">Channels of the first convolution (the second has twice as many).</param>
    public ImageClassifier(int channels, int height, int width, int numClasses, int filters = 16) : base(nameof(ImageClassifier))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 4);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 4);
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(filters, 1);
        Channels = channels; Height = height; Width = width; NumClasses = numClasses; Filters = filters;
        conv1 = nn.Conv2d(channels, filters, 3, padding: 1);
        conv2 = nn.Conv2d(filters, 2 * filters, 3, padding: 1);
        fc1 = nn.Linear(2 * filters * 49, 128);
        fc2 = nn.Linear(128, numClasses);
        RegisterComponents();
    }

    /// <summary>Image channels.</summary>
    public int Channels { get; }
    /// <summary>Image height.</summary>
    public int Height { get; }
    /// <summary>Image width.</summary>
    public int Width { get; }
    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }
    /// <summary>Channels of the first convolution.</summary>
    public int Filters { get; }

    /// <summary>Free-form description of what it was trained on (stored in the file); set by training.</summary>
    public IReadOnlyDictionary<string, string> Provenance { get; internal set; } = new Dictionary<string, string>();

    /// <summary>Class logits [N, classes] of images [N, C, H, W] in [-1, 1].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.max_pool2d(nn.functional.relu(conv1.call(x)), 2);
        h = nn.functional.max_pool2d(nn.functional.relu(conv2.call(h)), 2);
        h = nn.functional.adaptive_avg_pool2d(h, new long[] { 7, 7 }).flatten(1);
        return fc2.call(nn.functional.relu(fc1.call(h))).MoveToOuterDisposeScope();
    }

    /// <summary>Checks that <paramref name="images"/> is [N, C, H, W] of this classifier's size.</summary>
    /// <exception cref="ArgumentException">Another shape; the message names both.</exception>
    public void CheckInput(Tensor images, string what = "images")
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.ndim != 4 || images.shape[1] != Channels || images.shape[2] != Height || images.shape[3] != Width)
            throw new ArgumentException(
                $"{what} have shape [{string.Join(", ", images.shape)}]; the classifier was trained on [N, {Channels}, {Height}, {Width}] images.");
    }

    /// <summary>Predicted class of each image [N, C, H, W] in [-1, 1], as int64 [N] on the CPU, in batches.</summary>
    /// <param name="images">The images (any device and floating dtype).</param>
    /// <param name="batchSize">Images per forward pass.</param>
    public Tensor Predict(Tensor images, int batchSize = 256)
    {
        CheckInput(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var device = conv1.weight!.device;
        using var noGrad = no_grad();
        bool wasTraining = training;
        eval();
        try
        {
            var parts = new List<Tensor>();
            using var scope = NewDisposeScope();
            for (long start = 0; start < images.shape[0]; start += batchSize)
            {
                long n = Math.Min(batchSize, images.shape[0] - start);
                var batch = images.narrow(0, start, n).to(float32, device);
                parts.Add(call(batch).argmax(1).cpu());
            }
            var result = parts.Count == 0 ? empty(0, dtype: int64) : cat(parts, 0);
            return result.MoveToOuterDisposeScope();
        }
        finally
        {
            if (wasTraining) train();
        }
    }

    /// <summary>Saves the weights and sizes (and <see cref="Provenance"/>) as safetensors, atomically.</summary>
    public void Save(string path)
    {
        var metadata = new Dictionary<string, string>(Provenance)
        {
            [FormatKey] = FormatValue,
            ["channels"] = Channels.ToString(CultureInfo.InvariantCulture),
            ["height"] = Height.ToString(CultureInfo.InvariantCulture),
            ["width"] = Width.ToString(CultureInfo.InvariantCulture),
            ["classes"] = NumClasses.ToString(CultureInfo.InvariantCulture),
            ["filters"] = Filters.ToString(CultureInfo.InvariantCulture),
        };
        var tensors = state_dict().ToDictionary(p => p.Key, p => p.Value);
        SafeTensors.Save(path, tensors, metadata);
    }

    /// <summary>Loads a classifier saved by <see cref="Save"/>, on the CPU.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a McDit classifier, or a tensor is missing or misshapen.</exception>
    public static ImageClassifier Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Classifier file '{path}' does not exist.", path);
        using var content = SafeTensors.Load(path);
        return FromContent(content, path);
    }

    /// <summary>Loads a classifier saved by <see cref="Save"/> from a stream (a manifest resource, say), on the CPU.</summary>
    /// <param name="stream">The file's bytes, read from the current position.</param>
    /// <param name="sourceName">Names the source in errors.</param>
    /// <exception cref="InvalidDataException">The stream is not a McDit classifier, or a tensor is missing or misshapen.</exception>
    public static ImageClassifier Load(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var content = SafeTensors.Load(stream, sourceName);
        return FromContent(content, sourceName);
    }

    static ImageClassifier FromContent(SafeTensorsContent content, string path)
    {
        var meta = content.Metadata;
        if (!meta.TryGetValue(FormatKey, out var format) || format != FormatValue)
            throw new InvalidDataException($"'{path}' is not a McDit classifier file: expected metadata {FormatKey}={FormatValue}.");
        int Int(string key) => meta.TryGetValue(key, out var v) && int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var i)
            ? i : throw new InvalidDataException($"Classifier file '{path}' lacks a valid '{key}' metadata entry.");
        var classifier = new ImageClassifier(Int("channels"), Int("height"), Int("width"), Int("classes"), Int("filters"));
        using (no_grad())
        {
            foreach (var (name, parameter) in classifier.state_dict())
            {
                if (!content.Tensors.TryGetValue(name, out var value))
                    throw new InvalidDataException($"Classifier file '{path}' lacks the tensor '{name}'.");
                if (!value.shape.SequenceEqual(parameter.shape))
                    throw new InvalidDataException(
                        $"Classifier file '{path}': tensor '{name}' has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", parameter.shape)}].");
                parameter.copy_(value);
            }
        }
        classifier.Provenance = meta.Where(p => p.Key is not (FormatKey or "channels" or "height" or "width" or "classes" or "filters"))
            .ToDictionary(p => p.Key, p => p.Value);
        classifier.eval();
        return classifier;
    }
}
