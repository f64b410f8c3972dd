using System.Collections.ObjectModel;

namespace McDit.Torch.Data;

/// <summary>Which part of Fashion-MNIST to load.</summary>
public enum FashionMnistSplit
{
    /// <summary>The training images (<c>train-*</c> files; embedded: 600 per class).</summary>
    Train,
    /// <summary>The held-out test images (<c>t10k-*</c> files; embedded: 100 per class).</summary>
    HeldOut,
}

/// <summary>
/// Fashion-MNIST (Zalando Research, MIT licence): 28×28 grey images of 10 clothing classes.
/// A class-balanced subset ships inside this assembly (<see cref="LoadEmbedded"/>); the full data set loads from a
/// folder (<see cref="Load"/>), for example <c>/usr/share/datasets/fashion-mnist</c> from the Debian package
/// <c>dataset-fashion-mnist</c>.
/// </summary>
public static class FashionMnist
{
    /// <summary>Image side in pixels.</summary>
    public const int ImageSize = 28;
    /// <summary>Padding on each side that turns 28×28 into 32×32 (for patch sizes 2, 4, 8).</summary>
    public const int PaddingTo32 = 2;
    /// <summary>Images per class in the embedded training subset.</summary>
    public const int EmbeddedTrainPerClass = 600;
    /// <summary>Images per class in the embedded held-out subset.</summary>
    public const int EmbeddedHeldOutPerClass = 100;

    /// <summary>The 10 class names, by label.</summary>
    public static ReadOnlyCollection<string> ClassNames { get; } = Array.AsReadOnly(new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    });

    const string ResourcePrefix = "McDit.Torch.Data.Embedded.";

    /// <summary>
    /// Loads the embedded class-balanced subset: the first 600 images of each class of the training files
    /// (<see cref="FashionMnistSplit.Train"/>, 6000 images) or the first 100 of each class of the test files
    /// (<see cref="FashionMnistSplit.HeldOut"/>, 1000 images), in file order. See <c>Data/Embedded/README.md</c>.
    /// </summary>
    public static LabeledImageSet LoadEmbedded(FashionMnistSplit split = FashionMnistSplit.Train)
    {
        var stem = split switch
        {
            FashionMnistSplit.Train => "fashion-mnist-train-subset",
            FashionMnistSplit.HeldOut => "fashion-mnist-heldout-subset",
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected Train or HeldOut."),
        };
        string imagesName = $"{stem}-images-idx3-ubyte.gz", labelsName = $"{stem}-labels-idx1-ubyte.gz";
        IdxImages images;
        byte[] labels;
        using (var s = OpenResource(imagesName)) images = IdxReader.ReadImages(s, "embedded resource " + imagesName);
        using (var s = OpenResource(labelsName)) labels = IdxReader.ReadLabels(s, "embedded resource " + labelsName);
        return IdxReader.Combine(images, "embedded resource " + imagesName, labels, "embedded resource " + labelsName, ClassNames);
    }

    /// <summary>
    /// Loads the full Fashion-MNIST split from <paramref name="folder"/>, which holds the original files
    /// <c>train-images-idx3-ubyte.gz</c>, <c>train-labels-idx1-ubyte.gz</c>, <c>t10k-images-idx3-ubyte.gz</c>,
    /// <c>t10k-labels-idx1-ubyte.gz</c> (gzip), or the same names without <c>.gz</c> (plain).
    /// </summary>
    public static LabeledImageSet Load(string folder, FashionMnistSplit split = FashionMnistSplit.Train)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException(
                $"Fashion-MNIST folder '{folder}' does not exist; expected a folder with train-images-idx3-ubyte.gz and friends " +
                "(on Debian/Ubuntu: apt-get install dataset-fashion-mnist, then /usr/share/datasets/fashion-mnist).");
        var prefix = split switch
        {
            FashionMnistSplit.Train => "train",
            FashionMnistSplit.HeldOut => "t10k",
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected Train or HeldOut."),
        };
        var images = Find(folder, $"{prefix}-images-idx3-ubyte");
        var labels = Find(folder, $"{prefix}-labels-idx1-ubyte");
        return IdxReader.ReadLabeledImages(images, labels, ClassNames);
    }

    static string Find(string folder, string stem)
    {
        // The original names, then the variant some mirrors use (a dot before idx).
        string dotted = stem.Replace("-idx", ".idx", StringComparison.Ordinal);
        string[] candidates = { stem + ".gz", stem, dotted + ".gz", dotted };
        foreach (var name in candidates)
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException(
            $"Fashion-MNIST folder '{folder}' has none of: {string.Join(", ", candidates)}.", Path.Combine(folder, candidates[0]));
    }

    static Stream OpenResource(string name)
    {
        var assembly = typeof(FashionMnist).Assembly;
        return assembly.GetManifestResourceStream(ResourcePrefix + name)
            ?? throw new InvalidOperationException(
                $"Embedded resource '{ResourcePrefix + name}' is missing from {assembly.GetName().Name}; " +
                "expected it from src/McDit.Torch/Data/Embedded (see its README.md).");
    }
}
