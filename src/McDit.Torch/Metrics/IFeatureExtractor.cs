using TorchSharp;

namespace McDit.Torch.Metrics;

/// <summary>
/// Turns images into feature vectors for Fréchet distances and friends (Inception-v3 pool features, ResNet-18
/// features, ...). Implementations resize and normalise as their network expects, and turn grey images into three
/// channels.
/// </summary>
public interface IFeatureExtractor : IDisposable
{
    /// <summary>
    /// A stable id naming the network, its weights and the layer used (for example <c>resnet18-imagenet-onnx/pool</c>);
    /// reference statistics made with one id are never compared with features of another.
    /// </summary>
    string Id { get; }

    /// <summary>Feature dimension D.</summary>
    int Dimension { get; }

    /// <summary>Features of a batch of images.</summary>
    /// <param name="images">Images [N, C, H, W] with C = 1 or 3, values in [-1, 1], any floating dtype and device.</param>
    /// <returns>Features [N, D], float64 on the CPU.</returns>
    torch.Tensor Extract(torch.Tensor images);
}
