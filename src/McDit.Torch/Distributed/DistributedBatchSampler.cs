using TorchSharp;

namespace McDit.Torch.Distributed;

/// <summary>
/// Splits the rows of an indexable data set into global batches and gives each rank its shard: every rank draws the
/// same permutation per epoch (seeded by the seed and the epoch), cuts it into global batches of
/// <see cref="GlobalBatchSize"/> (the last one partial unless <see cref="DropLast"/>), and keeps the rows
/// <see cref="BatchShard"/> assigns it. The shards of all ranks are disjoint and cover each epoch.
/// </summary>
public sealed class DistributedBatchSampler
{
    /// <summary>Rows of the data set.</summary>
    public long DatasetSize { get; }
    /// <summary>Rows per global batch (over all ranks).</summary>
    public int GlobalBatchSize { get; }
    /// <summary>This rank.</summary>
    public int Rank { get; }
    /// <summary>Number of ranks.</summary>
    public int WorldSize { get; }
    /// <summary>Seed of the permutations.</summary>
    public long Seed { get; }
    /// <summary>Drop the last, partial global batch of each epoch.</summary>
    public bool DropLast { get; }

    /// <summary>Creates the sampler; every rank passes the same size, batch size and seed.</summary>
    public DistributedBatchSampler(long datasetSize, int globalBatchSize, int rank, int worldSize, long seed, bool dropLast = false)
    {
        if (datasetSize < 1) throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "The data set needs at least one row.");
        if (globalBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(globalBatchSize), globalBatchSize, "The global batch needs at least one row.");
        _ = new BatchShard(globalBatchSize, rank, worldSize).Validated();
        DatasetSize = datasetSize; GlobalBatchSize = globalBatchSize; Rank = rank; WorldSize = worldSize; Seed = seed; DropLast = dropLast;
    }

    /// <summary>Global batches per epoch.</summary>
    public long BatchesPerEpoch => DropLast ? DatasetSize / GlobalBatchSize : (DatasetSize + GlobalBatchSize - 1) / GlobalBatchSize;

    /// <summary>The epoch's permutation of row indices (the same on every rank).</summary>
    public long[] Permutation(long epoch)
    {
        using var generator = new torch.Generator(unchecked((ulong)(Seed * 1_000_003 + epoch)), torch.CPU);
        using var permutation = torch.randperm(DatasetSize, generator: generator, dtype: torch.int64);
        return permutation.data<long>().ToArray();
    }

    /// <summary>The epoch's global batches in order: each one's shard for this rank and the data set rows it holds.</summary>
    public IEnumerable<(BatchShard Shard, long[] Rows)> Epoch(long epoch)
    {
        var permutation = Permutation(epoch);
        for (long b = 0; b < BatchesPerEpoch; b++)
        {
            long start = b * GlobalBatchSize;
            int size = (int)Math.Min(GlobalBatchSize, DatasetSize - start);
            var shard = new BatchShard(size, Rank, WorldSize);
            yield return (shard, shard.Rows.Select(r => permutation[start + r]).ToArray());
        }
    }
}
