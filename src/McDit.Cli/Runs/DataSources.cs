using McDit.Torch.Data;

namespace McDit.Cli.Runs;

/// <summary>Resolves the <c>--data</c> option into a labelled training set.</summary>
public static class DataSources
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the full data set.</summary>
    public const string DebianFashionMnist = "/usr/share/datasets/fashion-mnist";

    /// <summary>
    /// "embedded" (6,000 Fashion-MNIST images shipped in the library), "fashion-mnist" (the full set from the Debian
    /// package) or a folder with Fashion-MNIST/MNIST-style IDX files.
    /// </summary>
    public static LabeledImageSet LoadTraining(string data)
    {
        if (string.Equals(data, "embedded", StringComparison.OrdinalIgnoreCase))
            return FashionMnist.LoadEmbedded(FashionMnistSplit.Train);
        var folder = string.Equals(data, "fashion-mnist", StringComparison.OrdinalIgnoreCase) ? DebianFashionMnist : data;
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException(
                $"--data '{data}': folder '{folder}' does not exist. Use 'embedded', 'fashion-mnist' (after `apt-get install dataset-fashion-mnist`) or a folder of IDX files.");
        return FashionMnist.Load(folder, FashionMnistSplit.Train);
    }

    /// <summary>Padding that brings the images to a side divisible by the patch size and at least 32 for 28×28 data.</summary>
    public static int PaddingFor(LabeledImageSet set, int patchSize)
    {
        if (set.Height != set.Width)
            throw new ArgumentException($"The images are {set.Height}×{set.Width}; the models take square images.");
        int side = set.Height == 28 ? 32 : set.Height;
        while (side % patchSize != 0) side++;
        if ((side - set.Height) % 2 != 0) side += patchSize; // keep the padding symmetric
        return (side - set.Height) / 2;
    }
}
