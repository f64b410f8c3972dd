using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Evaluation;

/// <summary>Conversions between image tensors in [-1, 1] and ML.NET images.</summary>
public static class ImageTensors
{
    /// <summary>
    /// Turns images [N, C, H, W] in [-1, 1] (C = 1 or 3) into 8-bit BGRA <see cref="MLImage"/>s: values map to
    /// round((x + 1)/2 · 255), clamped; a grey channel is written to R, G and B. The caller disposes the images.
    /// </summary>
    /// <param name="images">The images, any floating dtype and device.</param>
    public static MLImage[] ToMLImages(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.ndim != 4 || (images.shape[1] != 1 && images.shape[1] != 3))
            throw new ArgumentException(
                $"images has shape [{string.Join(", ", images.shape)}]; expected [N, C, H, W] with C = 1 or 3.", nameof(images));
        int n = (int)images.shape[0], h = (int)images.shape[2], w = (int)images.shape[3];
        byte[] hwc;
        using (var scope = NewDisposeScope())
        {
            var x = images.detach().to(float32, CPU);
            if (x.shape[1] == 1) x = x.expand(-1, 3, -1, -1);
            // [N, 3, H, W] RGB → [N, H, W, 4] BGRA bytes.
            var bytes = ((x + 1f) * 127.5f).round().clamp(0, 255).to(ScalarType.Byte);
            var bgr = bytes.flip(1);
            var alpha = full(new long[] { n, 1, h, w }, 255, dtype: ScalarType.Byte);
            hwc = cat(new[] { bgr, alpha }, 1).permute(0, 2, 3, 1).contiguous().data<byte>().ToArray();
        }
        var result = new MLImage[n];
        int stride = h * w * 4;
        for (int i = 0; i < n; i++)
            result[i] = MLImage.CreateFromPixels(w, h, MLPixelFormat.Bgra32, hwc.AsSpan(i * stride, stride));
        return result;
    }
}
