using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Data;

/// <summary>
/// Batches of a <see cref="LabeledImageSet"/> addressed by (epoch, index): each epoch's order is a permutation
/// drawn from a generator seeded with (seed, epoch), so a resumed run gets exactly the batches it would have had.
/// </summary>
public sealed class EpochBatches
{
    private readonly LabeledImageSet _set;
    private readonly long _seed;
    private long _cachedEpoch = -1;
    private int[] _order = Array.Empty<int>();

    /// <summary>Images per batch (the last batch of an epoch is dropped when incomplete, so every step sees a full batch).</summary>
    public int BatchSize { get; }
    /// <summary>Pixels of padding on each side (e.g. 2 turns 28×28 into 32×32).</summary>
    public int Padding { get; }
    /// <summary>Full batches per epoch.</summary>
    public int BatchesPerEpoch => _set.Count / BatchSize;

    /// <summary>Creates the feeder; throws when the set holds fewer images than one batch.</summary>
    public EpochBatches(LabeledImageSet set, int batchSize, long seed, int padding = 0)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Expected a batch size of at least 1.");
        if (set.Count < batchSize)
            throw new ArgumentException($"The data set has {set.Count} images, fewer than one batch of {batchSize}; lower the batch size.", nameof(batchSize));
        _set = set; _seed = seed; BatchSize = batchSize; Padding = padding;
    }

    /// <summary>The order of the images in <paramref name="epoch"/>.</summary>
    public int[] Permutation(long epoch)
    {
        if (epoch == _cachedEpoch) return _order;
        using var generator = new Generator(unchecked((ulong)(_seed * 1_000_003L + epoch)), torch.CPU);
        using var perm = torch.randperm(_set.Count, generator: generator, dtype: ScalarType.Int64);
        _order = perm.data<long>().ToArray().Select(i => (int)i).ToArray();
        _cachedEpoch = epoch;
        return _order;
    }

    /// <summary>Batch <paramref name="index"/> of <paramref name="epoch"/>: images float32 [B, C, H+2p, W+2p] in [-1, 1] and labels int64 [B].</summary>
    public (Tensor Images, Tensor Labels) Batch(long epoch, long index)
    {
        if (index < 0 || index >= BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"An epoch has {BatchesPerEpoch} batches.");
        var indices = new ReadOnlySpan<int>(Permutation(epoch), (int)index * BatchSize, BatchSize);
        return (_set.ToTensor(indices, Padding), _set.LabelsToTensor(indices));
    }
}
