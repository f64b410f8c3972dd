using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>
/// The rows of one global batch that a rank holds: rows <c>Rank, Rank + WorldSize, Rank + 2·WorldSize, …</c> of the
/// <see cref="GlobalSize"/> rows every rank reads in the same order (as PyTorch's DistributedSampler strides). The
/// shards of all ranks are disjoint and cover the batch, also a partial last batch (then they differ by at most one
/// row, and a rank may hold none when the batch has fewer rows than ranks).
/// </summary>
/// <param name="GlobalSize">Rows of the whole batch, over all ranks.</param>
/// <param name="Rank">This rank.</param>
/// <param name="WorldSize">Number of ranks.</param>
public sealed record BatchShard(int GlobalSize, int Rank, int WorldSize)
{
    /// <summary>The whole batch, held by a single process.</summary>
    public static BatchShard Whole(int size) => new(size, 0, 1);

    /// <summary>True when this shard is the whole batch.</summary>
    public bool IsWhole => WorldSize == 1;

    /// <summary>Number of rows this rank holds.</summary>
    public int Count => GlobalSize > Rank ? (GlobalSize - Rank + WorldSize - 1) / WorldSize : 0;

    /// <summary>True when row <paramref name="row"/> of the global batch belongs to this rank.</summary>
    public bool Holds(int row) => row % WorldSize == Rank;

    /// <summary>The global row indices this rank holds, in order.</summary>
    public IEnumerable<int> Rows => Enumerable.Range(0, Count).Select(i => Rank + i * WorldSize);

    /// <summary>The global row indices as an int64 tensor (for selecting this rank's rows of per-sample draws).</summary>
    public Tensor RowIndex(Device? device = null) =>
        torch.arange(Rank, Rank + (long)Count * WorldSize, WorldSize, dtype: ScalarType.Int64, device: device);

    /// <summary>Checks the values; throws naming the bad one.</summary>
    public BatchShard Validated()
    {
        if (WorldSize < 1) throw new ArgumentException($"Batch shard world size {WorldSize} is invalid: expected ≥ 1.");
        if (Rank < 0 || Rank >= WorldSize) throw new ArgumentException($"Batch shard rank {Rank} is invalid: expected 0..{WorldSize - 1}.");
        if (GlobalSize < 1) throw new ArgumentException($"Batch shard global size {GlobalSize} is invalid: expected at least one row.");
        return this;
    }
}
