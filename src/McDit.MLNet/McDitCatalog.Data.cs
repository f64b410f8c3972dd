using McDit.MLNet.Data;
using McDit.Torch.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

public sealed partial class McDitCatalog
{
    /// <summary>Data sources as data views: IDX files (MNIST, Fashion-MNIST), image folders, CIFAR-10.</summary>
    public McDitDataCatalog Data => new(Environment);
}

/// <summary>
/// McDit's data loaders: <c>mlContext.McDit().Data</c>. Each returns a <see cref="LabeledImageDataView"/> with the same
/// columns: <c>Image</c>, a float vector [C, H, W] with values in [0, 1] (the trainer's default input range), and
/// <c>Label</c>, a key over the classes whose key values are the class names (image folders add <c>Path</c>).
/// The views stream, shuffle themselves and know their row count.
/// </summary>
/// <example><code>
/// var data = mlContext.McDit().Data.LoadFashionMnist();                   // the embedded 6,000-image subset
/// var model = mlContext.McDit().Trainers.DiffusionTransformer("Image", "Label", numberOfSteps: 2000).Fit(data);
/// var pets = mlContext.McDit().Data.LoadImageFolder("pets", new ImageFolderOptions { ImageSize = 32, SkipUnreadable = true });
/// Console.WriteLine($"{pets.Count} images, {pets.SkippedCount} skipped");
/// </code></example>
public sealed partial class McDitDataCatalog
{
    /// <summary>Where the Debian/Ubuntu package <c>dataset-fashion-mnist</c> installs the full Fashion-MNIST.</summary>
    public const string DebianFashionMnistFolder = "/usr/share/datasets/fashion-mnist";

    static readonly Lazy<LabeledImageSet> EmbeddedTrain = new(() => FashionMnist.LoadEmbedded(FashionMnistSplit.Train));
    static readonly Lazy<LabeledImageSet> EmbeddedHeldOut = new(() => FashionMnist.LoadEmbedded(FashionMnistSplit.HeldOut));

    readonly IHostEnvironment _env;

    internal McDitDataCatalog(IHostEnvironment env) => _env = env;

    /// <summary>
    /// Loads uint8 images and labels from IDX files (the MNIST / Fashion-MNIST format, gzip or plain): [1, rows, cols]
    /// images with values in [0, 1]. The raw bytes are held in memory (one byte per pixel); floats are made per row.
    /// </summary>
    /// <param name="imagesPath">The image file (magic 0x00000803).</param>
    /// <param name="labelsPath">The label file (magic 0x00000801), one label per image.</param>
    /// <param name="classNames">The class names, by label; null names the classes "0", "1", … up to the largest label.</param>
    /// <param name="asImage">Give the image column as ML.NET images (MLImage) instead of float vectors.</param>
    /// <exception cref="InvalidDataException">A file is malformed, the counts differ or a label is out of range; the message names the file.</exception>
    public LabeledImageDataView LoadIdx(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, bool asImage = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(imagesPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(labelsPath);
        var images = IdxReader.ReadImages(imagesPath);
        var labels = IdxReader.ReadLabels(labelsPath);
        if (classNames is null)
        {
            int classes = labels.Length == 0 ? 1 : labels.Max() + 1;
            classNames = Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        else if (classNames.Count == 0)
            throw new ArgumentException("Expected at least one class name, or null to name the classes by label.", nameof(classNames));
        var set = IdxReader.Combine(images, imagesPath, labels, labelsPath, classNames);
        return new LabeledImageDataView(new LabeledImageSetSource(set), asImage);
    }

    /// <summary>
    /// Loads Fashion-MNIST (28×28 grey images of 10 named clothing classes, [1, 28, 28] with values in [0, 1]): with no
    /// folder, the class-balanced subset embedded in McDit (Train: 6,000 images, HeldOut: 1,000); with a folder, the
    /// full split from the original files there, for example <see cref="DebianFashionMnistFolder"/>.
    /// </summary>
    /// <param name="split">Train (<c>train-*</c> files) or HeldOut (<c>t10k-*</c> files).</param>
    /// <param name="folder">Null for the embedded subset; otherwise a folder with <c>train-images-idx3-ubyte.gz</c> and
    /// friends (gzip or plain).</param>
    /// <param name="asImage">Give the image column as ML.NET images (MLImage) instead of float vectors.</param>
    public LabeledImageDataView LoadFashionMnist(FashionMnistSplit split = FashionMnistSplit.Train, string? folder = null, bool asImage = false)
    {
        LabeledImageSet set;
        if (folder is null)
            set = split switch
            {
                FashionMnistSplit.Train => EmbeddedTrain.Value,
                FashionMnistSplit.HeldOut => EmbeddedHeldOut.Value,
                _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected Train or HeldOut."),
            };
        else
            set = FashionMnist.Load(folder, split);
        return new LabeledImageDataView(new LabeledImageSetSource(set), asImage);
    }

    /// <summary>An in-memory <see cref="LabeledImageSet"/> as a data view ([C, H, W] with values in [0, 1]).</summary>
    /// <param name="images">The images; not copied.</param>
    /// <param name="asImage">Give the image column as ML.NET images (MLImage) instead of float vectors.</param>
    public LabeledImageDataView Load(LabeledImageSet images, bool asImage = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        return new LabeledImageDataView(new LabeledImageSetSource(images), asImage);
    }

    /// <summary>
    /// Loads a folder with one sub-folder per class (torchvision's ImageFolder convention): the classes are the
    /// sub-folders in ordinal order (every sub-folder counts, hidden ones too, as in torchvision), the images of a class
    /// are the files with an image extension anywhere below its folder. Images are decoded with ImageSharp when a
    /// cursor reads them, within the size bounds of the options, and resized to S×S; the view holds only the file list.
    /// Columns: <c>Image</c> [C, S, S] in [0, 1], <c>Label</c> (key, names = folder names), <c>Path</c>.
    /// </summary>
    /// <param name="root">The folder of class folders.</param>
    /// <param name="options">Size, channels, fitting, limits, skipping; null for the defaults (32×32 RGB, centre crop).</param>
    /// <exception cref="InvalidDataException">A file is unreadable, corrupt, too large (bytes or pixels) or not an image, and
    /// <see cref="ImageFolderOptions.SkipUnreadable"/> is off; the message names the file and the reason. Also: no class
    /// folders, or a class without images.</exception>
    public LabeledImageDataView LoadImageFolder(string root, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        var skipped = new List<SkippedImageFile>();
        var source = ImageFolderSource.Open(root, options, skipped);
        if (skipped.Count > 0)
        {
            var host = _env.Register("McDit.Data");
            using var ch = host.Start("LoadImageFolder");
            ch.Warning($"McDit: image folder '{root}': skipped {skipped.Count} unreadable file(s) of {skipped.Count + source.Count}; " +
                $"first: {skipped[0].Path}: {skipped[0].Reason}");
        }
        return new LabeledImageDataView(source, options.AsImage, skipped);
    }

    /// <summary>
    /// Loads CIFAR-10 from its binary version (<c>cifar-10-binary.tar.gz</c>, extracted): [3, 32, 32] RGB images with
    /// values in [0, 1] and 10 classes. Records are read from the files when a cursor needs them.
    /// </summary>
    /// <param name="folderOrFile">The folder <c>cifar-10-batches-bin</c> (or a folder holding it) — the split picks
    /// <c>data_batch_1.bin</c> … <c>data_batch_5.bin</c> or <c>test_batch.bin</c> — or one batch file (the split is then not used).
    /// The class names come from <c>batches.meta.txt</c> beside the files, else the standard names.</param>
    /// <param name="split">Train (50,000 images) or Test (10,000).</param>
    /// <param name="asImage">Give the image column as ML.NET images (MLImage) instead of float vectors.</param>
    /// <exception cref="InvalidDataException">A file's length is not a positive multiple of 3073 bytes (named in the
    /// message); a label byte above 9 fails when it is read.</exception>
    public LabeledImageDataView LoadCifar10(string folderOrFile, Cifar10Split split = Cifar10Split.Train, bool asImage = false)
        => new(Cifar10Source.Open(folderOrFile, split), asImage);
}
