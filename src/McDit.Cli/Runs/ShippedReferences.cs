using System.Globalization;
using System.Text.RegularExpressions;
using McDit.MLNet.Evaluation;
using McDit.Torch.Metrics;
using McDit.Torch.IO;
using static TorchSharp.torch;

namespace McDit.Cli.Runs;

/// <summary>
/// The ResNet-18 features of the embedded data's held-out images, shipped inside mcdit: the first demo or evaluation
/// on a new machine fits its FD reference from them instead of featurising the images (about 20 s of two CPU cores for
/// the demo's 500). The file is checked against freshly computed features, and rewritten with
/// <c>MCDIT_UPDATE_SHIPPED=1</c>, by the tests (ShippedCachesTests).
/// </summary>
public static partial class ShippedReferences
{
    /// <summary>The manifest resource holding <c>features</c> [N, 512] float32, metadata <c>extractor_id</c>.</summary>
    public const string ResourceName = "McDit.Cli.Shipped.embedded-heldout.resnet18.safetensors";

    /// <summary>Where the file lies in the repository (for the tests that check and rewrite it).</summary>
    public const string SourcePath = "src/McDit.Cli/Shipped/embedded-heldout.resnet18.safetensors";

    /// <summary>
    /// How many leading held-out images of the embedded data a reference name stands for: all of them for
    /// "embedded (held-out)" (null count), the first N for "embedded (held-out, N)" (as the demo and compare name it);
    /// false for any other reference.
    /// </summary>
    public static bool IsEmbedded(string referenceName, out int? count)
    {
        count = null;
        var match = EmbeddedName().Match(referenceName);
        if (!match.Success) return false;
        if (match.Groups[1].Success)
        {
            if (!int.TryParse(match.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out int n)) return false;
            count = n;
        }
        return true;
    }

    [GeneratedRegex(@"^embedded \(held-out(?:, ([0-9,]+))?\)$")]
    private static partial Regex EmbeddedName();

    /// <summary>
    /// Writes the feature statistics of <paramref name="referenceName"/> into <paramref name="cacheFile"/> from the shipped
    /// features when it names the embedded data's held-out images (see <see cref="IsEmbedded"/>); false, writing nothing,
    /// for any other reference, a count the file does not cover, or a file made with another extractor.
    /// </summary>
    public static bool TryInstall(string referenceName, string cacheFile)
    {
        if (!IsEmbedded(referenceName, out int? count)) return false;
        using var features = Load();
        if (features is null) return false;
        long n = count ?? features.shape[0];
        if (n < 2 || n > features.shape[0]) return false;
        using var scope = NewDisposeScope();
        using var statistics = GaussianStatistics.FromFeatures(features.slice(0, 0, n, 1), ResNet18FeatureExtractor.ExtractorId);
        statistics.Save(cacheFile); // atomically, creating the folder
        return true;
    }

    /// <summary>The shipped features [N, 512] in held-out order, or null when this build carries none for the current extractor.</summary>
    public static Tensor? Load()
    {
        using var stream = typeof(ShippedReferences).Assembly.GetManifestResourceStream(ResourceName);
        if (stream is null) return null;
        using var content = SafeTensors.Load(stream, ResourceName);
        if (!content.Metadata.TryGetValue(GaussianStatistics.ExtractorIdKey, out var id) || id != ResNet18FeatureExtractor.ExtractorId
            || !content.Tensors.TryGetValue("features", out var features))
            return null;
        return features.clone();
    }
}
