using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// Fixed 2-D sine-cosine position embeddings (MAE / DiT): the first half of the width encodes the column
/// index, the second half the row index, each as [sin(pos·ω), cos(pos·ω)] with ω_k = 10000^(−k/(D/4)).
/// Computed in double precision, returned as float32 [1, L, D].
/// </summary>
public static class SinCosPositionEmbedding
{
    /// <summary>Embeddings for a gridSize × gridSize grid of tokens, row-major.</summary>
    public static Tensor TwoD(int embedDim, int gridSize)
    {
        if (embedDim % 4 != 0)
            throw new ArgumentException($"The embedding width must be a multiple of 4 for 2-D sin-cos positions; got {embedDim}.", nameof(embedDim));
        int quarter = embedDim / 4, length = gridSize * gridSize;
        var values = new float[length * embedDim];
        for (int row = 0; row < gridSize; row++)
        for (int col = 0; col < gridSize; col++)
        {
            int offset = (row * gridSize + col) * embedDim;
            for (int k = 0; k < quarter; k++)
            {
                double omega = 1.0 / Math.Pow(10000, k / (double)quarter);
                values[offset + k] = (float)Math.Sin(col * omega);
                values[offset + quarter + k] = (float)Math.Cos(col * omega);
                values[offset + 2 * quarter + k] = (float)Math.Sin(row * omega);
                values[offset + 3 * quarter + k] = (float)Math.Cos(row * omega);
            }
        }
        return tensor(values, new long[] { 1, length, embedDim });
    }
}
