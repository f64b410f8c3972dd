using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>Patchify helpers in DiT/MaskDiT's token layout (row-major patches; within a patch: (p, q, c)).</summary>
public static class Patches
{
    /// <summary>[N, C, H, W] → [N, L, p·p·C].</summary>
    public static Tensor Patchify(Tensor x, int p)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], c = x.shape[1], h = x.shape[2] / p, w = x.shape[3] / p;
        var y = x.reshape(n, c, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(n, h * w, p * p * c);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>[N, C, H, W] → per-patch means of a per-pixel map averaged over channels: [N, L] (MaskDiT's avg_pool2d of loss.mean(1)).</summary>
    public static Tensor PatchMean(Tensor perPixel, int p)
    {
        using var scope = NewDisposeScope();
        var pooled = nn.functional.avg_pool2d(perPixel.mean(new long[] { 1 }), p);
        return pooled.flatten(1).MoveToOuterDisposeScope();
    }
}
