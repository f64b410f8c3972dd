using McDit.MLNet.Data;
using McDit.Torch.Data;
using Microsoft.ML;

namespace McDit.Cli.Runs;

/// <summary>Resolves the <c>--data</c> option into an ML.NET data view (McDit's loaders).</summary>
public static class DataSources
{
    /// <summary>
    /// "embedded" (Fashion-MNIST subset shipped in the library), "fashion-mnist" (the full set from Debian's
    /// dataset-fashion-mnist), or a folder: CIFAR-10 binary batches, Fashion-MNIST/MNIST IDX files, or an image
    /// folder with one sub-folder per class. <paramref name="heldOut"/> picks the test split (for evaluation); an image
    /// folder has none, so it is used whole when <paramref name="imageFolder"/> options are given (an explicit reference).
    /// </summary>
    public static LabeledImageDataView Load(MLContext ml, string data, bool heldOut, ImageFolderOptions? imageFolder = null)
    {
        var loaders = ml.McDit().Data;
        var split = heldOut ? FashionMnistSplit.HeldOut : FashionMnistSplit.Train;
        if (string.Equals(data, "embedded", StringComparison.OrdinalIgnoreCase))
            return loaders.LoadFashionMnist(split);
        var folder = string.Equals(data, "fashion-mnist", StringComparison.OrdinalIgnoreCase) ? McDitDataCatalog.DebianFashionMnistFolder : data;
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException(
                $"--data '{data}': folder '{folder}' does not exist. Use 'embedded', 'fashion-mnist' (after `apt-get install dataset-fashion-mnist`), " +
                "or a folder of CIFAR-10 batches, IDX files, or images in one sub-folder per class.");
        if (File.Exists(Path.Combine(folder, "data_batch_1.bin")) || File.Exists(Path.Combine(folder, "test_batch.bin")))
            return loaders.LoadCifar10(folder, heldOut ? Cifar10Split.Test : Cifar10Split.Train);
        if (Directory.EnumerateFiles(folder, "*idx3-ubyte*").Any())
            return loaders.LoadFashionMnist(split, folder);
        if (heldOut && imageFolder is null)
            throw new InvalidOperationException(
                $"--data '{data}' is an image folder, which has no held-out split; give the real images to compare with as --reference FOLDER.");
        return loaders.LoadImageFolder(folder, imageFolder);
    }
}
