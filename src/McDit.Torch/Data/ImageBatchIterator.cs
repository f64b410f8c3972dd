using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Data;

/// <summary>
/// Shuffled mini-batches over a <see cref="LabeledImageSet"/>: each call to <see cref="NextEpoch"/> draws a fresh
/// permutation from a CPU <see cref="torch.Generator"/> and yields (images [B, C, H + 2p, W + 2p] float32 in [-1, 1],
/// labels [B] int64). Only one batch is converted at a time; the set stays in memory as bytes.
/// </summary>
/// <remarks>
/// The same seed gives the same sequence of epochs. The yielded tensors belong to the caller: dispose them, or iterate
/// inside a <c>torch.NewDisposeScope()</c> (tensors are created when the enumerator advances, so they join the scope
/// that is current then).
/// </remarks>
public sealed class ImageBatchIterator : IDisposable
{
    readonly LabeledImageSet _set;
    readonly Generator _generator;
    readonly bool _ownsGenerator;
    readonly Device? _device;

    /// <summary>Creates an iterator with its own generator seeded with <paramref name="seed"/>.</summary>
    /// <param name="set">The images to iterate.</param>
    /// <param name="batchSize">Images per batch, at least 1.</param>
    /// <param name="seed">Seed of the shuffling generator.</param>
    /// <param name="padding">Pixels added on each side, filled with −1; 2 turns 28×28 into 32×32.</param>
    /// <param name="dropLast">Skip the last batch of an epoch when it is smaller than <paramref name="batchSize"/>.</param>
    /// <param name="device">Device the batches are moved to; null keeps them on the CPU.</param>
    public ImageBatchIterator(LabeledImageSet set, int batchSize, long seed, int padding = 0, bool dropLast = false, Device? device = null)
        : this(set, batchSize, NewGenerator(seed), padding, dropLast, device, ownsGenerator: true) { }

    static Generator NewGenerator(long seed)
    {
        TorchBackend.EnsureInitialized();
        return new Generator((ulong)seed);
    }

    /// <summary>Creates an iterator that draws its permutations from <paramref name="generator"/> (a CPU generator, not disposed here).</summary>
    /// <param name="set">The images to iterate.</param>
    /// <param name="batchSize">Images per batch, at least 1.</param>
    /// <param name="generator">Source of the permutations.</param>
    /// <param name="padding">Pixels added on each side, filled with −1; 2 turns 28×28 into 32×32.</param>
    /// <param name="dropLast">Skip the last batch of an epoch when it is smaller than <paramref name="batchSize"/>.</param>
    /// <param name="device">Device the batches are moved to; null keeps them on the CPU.</param>
    public ImageBatchIterator(LabeledImageSet set, int batchSize, Generator generator, int padding = 0, bool dropLast = false, Device? device = null)
        : this(set, batchSize, generator, padding, dropLast, device, ownsGenerator: false) { }

    ImageBatchIterator(LabeledImageSet set, int batchSize, Generator generator, int padding, bool dropLast, Device? device, bool ownsGenerator)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(generator);
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Expected a batch size of at least 1.");
        if (padding < 0 || padding > IdxReader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"Expected 0 to {IdxReader.MaxSide} pixels of padding.");
        if (dropLast && set.Count < batchSize)
            throw new ArgumentException(
                $"With dropLast, a set of {set.Count} images gives no batch of {batchSize}; lower the batch size.", nameof(batchSize));
        _set = set;
        _generator = generator;
        _ownsGenerator = ownsGenerator;
        _device = device;
        BatchSize = batchSize;
        Padding = padding;
        DropLast = dropLast;
    }

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Pixels of padding on each side.</summary>
    public int Padding { get; }
    /// <summary>Whether a short last batch is skipped.</summary>
    public bool DropLast { get; }
    /// <summary>Number of epochs started so far.</summary>
    public int EpochsStarted { get; private set; }
    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch => DropLast ? _set.Count / BatchSize : (_set.Count + BatchSize - 1) / BatchSize;

    /// <summary>Draws the next epoch's permutation of image indices (advances the generator, as <see cref="NextEpoch"/> does).</summary>
    public int[] NextPermutation()
    {
        EpochsStarted++;
        using var perm = torch.randperm(_set.Count, generator: _generator, dtype: int64);
        var order = new int[_set.Count];
        var span = perm.data<long>();
        for (int i = 0; i < order.Length; i++) order[i] = (int)span[i];
        return order;
    }

    /// <summary>
    /// Starts a new epoch: draws its permutation now and returns its batches in order, each (images, labels).
    /// Every image appears exactly once per epoch (except the dropped tail with <see cref="DropLast"/>).
    /// </summary>
    public IEnumerable<(Tensor Images, Tensor Labels)> NextEpoch() => Batches(NextPermutation());

    IEnumerable<(Tensor Images, Tensor Labels)> Batches(int[] order)
    {
        int batches = BatchesPerEpoch;
        for (int b = 0; b < batches; b++)
        {
            int start = b * BatchSize, length = Math.Min(BatchSize, order.Length - start);
            var indices = new ReadOnlySpan<int>(order, start, length);
            var images = _set.ToTensor(indices, Padding);
            var labels = _set.LabelsToTensor(indices);
            if (_device is not null && _device.type != DeviceType.CPU)
            {
                var (i2, l2) = (images.to(_device), labels.to(_device));
                images.Dispose();
                labels.Dispose();
                (images, labels) = (i2, l2);
            }
            yield return (images, labels);
        }
    }

    /// <summary>Disposes the generator when this iterator created it.</summary>
    public void Dispose()
    {
        if (_ownsGenerator) _generator.Dispose();
    }
}
