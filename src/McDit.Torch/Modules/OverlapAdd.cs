using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// Assembles an image from overlapping output windows (<see cref="Models.DiffusionTransformerConfig.OutputOverlap"/>): each
/// token predicts a (p + 2m)² window centred on its p×p patch; the windows are weighted by a separable ramp over the 2m
/// pixels around each patch border (1 elsewhere), added where they overlap, and divided by the summed weights. Across a
/// border the weight passes from one token to the next in steps of 1/(2m), so no patch border is a hard edge. No parameters.
/// </summary>
public static class OverlapAdd
{
    /// <summary>
    /// Windows [N, L, (p + 2m)²·C] in DiT's within-patch layout (row, column, channel) on a square grid of √L tokens → image
    /// [N, C, √L·p, √L·p]. <paramref name="overlap"/> m is in 1..p/2.
    /// </summary>
    public static Tensor Assemble(Tensor windows, int patchSize, int overlap, int channels)
    {
        if (overlap < 1 || overlap > patchSize / 2)
            throw new ArgumentOutOfRangeException(nameof(overlap), overlap, $"The output overlap must be in 1..{patchSize / 2} for patch size {patchSize}.");
        int k = patchSize + 2 * overlap;
        long tokens = windows.shape.Length == 3 ? windows.shape[1] : 0;
        int grid = (int)Math.Round(Math.Sqrt(tokens)), side = grid * patchSize;
        if (windows.shape.Length != 3 || windows.shape[2] != (long)k * k * channels || (long)grid * grid != tokens)
            throw new ArgumentException(
                $"Overlapping output windows must be [N, L, {k * k * channels}] on a square grid of tokens; got [{string.Join(", ", windows.shape)}].", nameof(windows));
        using var scope = NewDisposeScope();
        long n = windows.shape[0];
        var weight = Window(patchSize, overlap, windows.dtype, windows.device);                          // [k, k]
        var weighted = windows.reshape(n, tokens, k, k, channels) * weight.reshape(1, 1, k, k, 1);
        var columns = weighted.permute(0, 4, 2, 3, 1).reshape(n, channels * k * k, tokens);              // fold's (c, kh, kw) × L
        var image = nn.functional.fold(columns, side, k, padding: overlap, stride: patchSize);
        var coverage = nn.functional.fold(weight.reshape(1, k * k, 1).expand(1, k * k, tokens), side, k, padding: overlap, stride: patchSize);
        return (image / coverage).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The separable window over p + 2m pixels: (j + ½)/(2m) over the first and last 2m pixels, 1 between; where two
    /// neighbouring windows overlap their weights sum to 1.
    /// </summary>
    public static Tensor Window(int patchSize, int overlap, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        int k = patchSize + 2 * overlap;
        var ramp = Enumerable.Range(0, k).Select(j => (float)Math.Min(1.0, (Math.Min(j, k - 1 - j) + 0.5) / (2 * overlap))).ToArray();
        var t = tensor(ramp, dtype: ScalarType.Float32, device: device);
        return outer(t, t).to_type(dtype).MoveToOuterDisposeScope();
    }
}
