using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// Circular shifts of images along both spatial axes: how the alternating-shift sampler
/// (<see cref="SamplerOptions.AlternatingShift"/>) and the training's shift augmentation
/// (<see cref="Training.MethodOptions.ShiftAugmentation"/>) move a patch model's borders.
/// </summary>
public static class ImageShift
{
    /// <summary>
    /// <paramref name="images"/> [..., H, W] rolled by <paramref name="pixels"/> down and right (negative: up and left);
    /// the same tensor when <paramref name="pixels"/> is 0.
    /// </summary>
    public static Tensor Roll(Tensor images, int pixels) =>
        pixels == 0 ? images : images.roll(new long[] { pixels, pixels }, new long[] { -2, -1 });
}
