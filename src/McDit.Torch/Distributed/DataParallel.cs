using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Distributed;

/// <summary>
/// The collectives of data-parallel training on top of an <see cref="IProcessGroup"/>: gradients summed over ranks in
/// flat float32 buckets (each rank's loss is already divided by the global batch size, so the sum is the gradient of
/// the global mean), state copied from rank 0, a small all-reduce of per-step numbers (loss sums, agreement checks).
/// </summary>
/// <remarks>
/// Buckets go out after the whole backward pass, all at once: TorchSharp 0.107 has no tensor gradient hooks
/// (Tensor.register_hook) and no module backward hooks, so the all-reduce cannot overlap the backward pass as
/// PyTorch DDP's does.
/// </remarks>
public sealed class DataParallel
{
    /// <summary>PyTorch DDP's default bucket size, 25 MiB.</summary>
    public const long DefaultBucketBytes = 25L << 20;

    /// <summary>The ranks.</summary>
    public IProcessGroup Group { get; }
    /// <summary>Largest bucket of gradients summed in one collective.</summary>
    public long BucketBytes { get; }
    /// <summary>Gradient bytes the last <see cref="AllReduceGradients"/> summed (what each rank sends and receives per step, before the engine's algorithm).</summary>
    public long LastGradientBytes { get; private set; }
    /// <summary>Buckets of the last <see cref="AllReduceGradients"/>.</summary>
    public int LastBucketCount { get; private set; }
    /// <summary>Wall time of the last gradient all-reduce (header, buckets, copies back), including waiting for slower ranks.</summary>
    public TimeSpan LastAllReduceTime { get; private set; }

    /// <summary>Wraps a process group.</summary>
    public DataParallel(IProcessGroup group, long bucketBytes = DefaultBucketBytes)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (bucketBytes < 4) throw new ArgumentOutOfRangeException(nameof(bucketBytes), bucketBytes, "A bucket holds at least one float32.");
        Group = group;
        BucketBytes = bucketBytes;
    }

    /// <summary>This rank's shard of a global batch of <paramref name="globalSize"/> rows.</summary>
    public BatchShard Shard(int globalSize) => new BatchShard(globalSize, Group.Rank, Group.WorldSize).Validated();

    /// <summary>
    /// Sums the gradients of <paramref name="parameters"/> over all ranks, in place, and the per-step numbers in
    /// <paramref name="values"/> with them; returns the summed values. Parameters without a gradient are skipped; every
    /// rank must have gradients for the same parameters (checked).
    /// </summary>
    /// <exception cref="DistributedException">A collective failed, or the ranks disagree on which parameters have gradients.</exception>
    public double[] AllReduceGradients(IReadOnlyList<Tensor> parameters, IReadOnlyList<double> values)
    {
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var grads = new List<Tensor>();
        foreach (var p in parameters)
            if (p.grad is { } g) grads.Add(g);
        // One small collective first: the caller's numbers and a fingerprint of the gradient set.
        var header = new double[values.Count + 2];
        for (int i = 0; i < values.Count; i++) header[i] = values[i];
        header[^2] = grads.Count;
        header[^1] = grads.Sum(g => (double)g.numel());
        var summed = AllReduce(header);
        if (summed[^2] != grads.Count * (double)Group.WorldSize || summed[^1] != header[^1] * Group.WorldSize)
            throw new DistributedException(
                $"Rank {Group.Rank} of {Group.WorldSize}: the ranks have gradients for different parameters (this rank: {grads.Count} tensors, " +
                $"{header[^1]:N0} values; all ranks together: {summed[^2]:N0} tensors). Every rank must run the same model and method.");

        long bytes = 0;
        int buckets = 0;
        foreach (var bucket in Buckets(grads))
        {
            var flat = torch.cat(bucket.Select(g => g.reshape(-1).to_type(ScalarType.Float32)).ToArray());
            Group.AllReduceSum(new[] { flat });
            long offset = 0;
            using (no_grad())
                foreach (var g in bucket)
                {
                    g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
                    offset += g.numel();
                }
            bytes += flat.numel() * flat.element_size();
            buckets++;
        }
        LastGradientBytes = bytes;
        LastBucketCount = buckets;
        LastAllReduceTime = clock.Elapsed;
        return summed[..values.Count];
    }

    // Consecutive gradients up to BucketBytes (as float32) per bucket; a larger tensor is a bucket of its own.
    IEnumerable<List<Tensor>> Buckets(List<Tensor> grads)
    {
        var bucket = new List<Tensor>();
        long size = 0;
        foreach (var g in grads)
        {
            long b = g.numel() * 4;
            if (bucket.Count > 0 && size + b > BucketBytes)
            {
                yield return bucket;
                bucket = new List<Tensor>();
                size = 0;
            }
            bucket.Add(g);
            size += b;
        }
        if (bucket.Count > 0) yield return bucket;
    }

    /// <summary>Sums a few numbers over all ranks (float64, on the group's device).</summary>
    public double[] AllReduce(IReadOnlyList<double> values)
    {
        using var scope = NewDisposeScope();
        var t = torch.tensor(values.ToArray(), dtype: ScalarType.Float64, device: GroupDevice);
        Group.AllReduceSum(new[] { t });
        return t.cpu().data<double>().ToArray();
    }

    /// <summary>True on every rank when <paramref name="flag"/> is true on any rank (e.g. "stop": all ranks stop at the same step).</summary>
    public bool AnyRank(bool flag) => AllReduce(new[] { flag ? 1.0 : 0.0 })[0] > 0;

    /// <summary>
    /// Copies every tensor from rank 0 into the same tensor of the other ranks, in place (weights, EMA, optimizer state,
    /// random state), so every rank holds identical state. Tensors not on the group's kind of device, or not contiguous,
    /// travel through a temporary copy.
    /// </summary>
    public void BroadcastFromRoot(IEnumerable<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var direct = new List<Tensor>();
        var staged = new List<(Tensor Target, Tensor Copy)>();
        var device = GroupDevice;
        foreach (var t in tensors)
        {
            if (t.is_contiguous() && t.device.type == device.type && (device.type == DeviceType.CPU || t.device.index == device.index)) direct.Add(t);
            else staged.Add((t, t.to(device).contiguous().clone()));
        }
        Group.Broadcast(direct.Concat(staged.Select(s => s.Copy)).ToList());
        foreach (var (target, copy) in staged) target.copy_(copy);
    }

    /// <summary>
    /// Checks that every rank holds the same values as rank 0 (for example step, stage and data position on resume);
    /// throws naming the first that differs.
    /// </summary>
    /// <exception cref="DistributedException">This rank's values differ from rank 0's.</exception>
    public void RequireSameAsRoot(IReadOnlyList<(string Name, long Value)> values, string hint)
    {
        using var scope = NewDisposeScope();
        var mine = values.Select(v => v.Value).ToArray();
        var root = torch.tensor(mine, dtype: ScalarType.Int64, device: GroupDevice);
        Group.Broadcast(new[] { root });
        var theirs = root.cpu().data<long>().ToArray();
        var differs = Enumerable.Range(0, mine.Length).Where(i => mine[i] != theirs[i]).Select(i => $"{values[i].Name} {mine[i]} (rank 0: {theirs[i]})").ToList();
        // Every rank must learn whether any rank differs, or the ones that agree would wait for the others.
        bool anyDiffers = AnyRank(differs.Count > 0);
        if (differs.Count > 0)
            throw new DistributedException($"Rank {Group.Rank} of {Group.WorldSize} does not match rank 0: {string.Join(", ", differs)}. {hint}");
        if (anyDiffers)
            throw new DistributedException($"Rank {Group.Rank} of {Group.WorldSize}: another rank does not match rank 0 (see its message). {hint}");
    }

    Device GroupDevice => Group.Device;
}
