using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Diffusion;

/// <summary>
/// A per-sample random split of L patch tokens into kept (visible) and masked tokens, as MaskDiT and MAE draw it:
/// argsort of uniform noise gives a random permutation per sample; its first (1 − r)·L entries are kept.
/// </summary>
/// <remarks>The same code serves training and the ML.NET patch masker, so both mask identically per seed.</remarks>
public sealed class PatchMask : IDisposable
{
    /// <summary>Indices of the kept tokens, [N, L_keep] int64, in permutation order.</summary>
    public Tensor IdsKeep { get; }
    /// <summary>Indices of the masked tokens, [N, L − L_keep] int64, in permutation order.</summary>
    public Tensor IdsMasked { get; }
    /// <summary>Inverse permutation: position of each token in [kept..., masked...], [N, L] int64.</summary>
    public Tensor IdsRestore { get; }
    /// <summary>1 where a token is masked, 0 where it is kept, [N, L] float32.</summary>
    public Tensor Mask { get; }
    /// <summary>Number of tokens per sample.</summary>
    public int Length { get; }
    /// <summary>Number of kept tokens per sample.</summary>
    public int KeepCount { get; }

    PatchMask(Tensor idsKeep, Tensor idsMasked, Tensor idsRestore, Tensor mask, int length, int keep)
    {
        IdsKeep = idsKeep; IdsMasked = idsMasked; IdsRestore = idsRestore; Mask = mask; Length = length; KeepCount = keep;
    }

    /// <summary>Number of tokens kept at mask ratio <paramref name="ratio"/> out of <paramref name="length"/> (MaskDiT's int((1 − r)·L)).</summary>
    public static int KeptTokens(int length, double ratio)
    {
        if (ratio < 0 || ratio >= 1 || double.IsNaN(ratio))
            throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "The mask ratio must be in [0, 1).");
        return Math.Max(1, (int)(length * (1 - ratio)));
    }

    /// <summary>Draws an independent random mask for each of <paramref name="batch"/> samples.</summary>
    /// <param name="batch">Number of samples N.</param>
    /// <param name="length">Tokens per sample L.</param>
    /// <param name="ratio">Fraction of tokens masked, in [0, 1).</param>
    /// <param name="generator">Source of randomness (reproducible per seed); null uses the global generator.</param>
    /// <param name="device">Device of the index tensors.</param>
    public static PatchMask Random(int batch, int length, double ratio, Generator? generator = null, Device? device = null)
    {
        int keep = KeptTokens(length, ratio);
        using var scope = NewDisposeScope();
        var noise = torch.rand(batch, length, generator: generator);
        if (device is not null && device.type != DeviceType.CPU) noise = noise.to(device);
        return FromNoise(noise, keep).MoveToOuter(scope);
    }

    /// <summary>Builds a mask from explicit kept indices (for example a recorded mask), [N, L_keep] int64.</summary>
    public static PatchMask FromKeptIndices(Tensor idsKeep, int length)
    {
        using var scope = NewDisposeScope();
        int batch = (int)idsKeep.shape[0], keep = (int)idsKeep.shape[1];
        // Rank kept tokens first (in the given order), masked ones after in index order.
        var score = torch.full(batch, length, (double)length, device: idsKeep.device);
        var order = torch.arange(keep, dtype: ScalarType.Float32, device: idsKeep.device).expand(batch, keep);
        score = score.scatter(1, idsKeep, order);
        score = score + torch.arange(length, dtype: ScalarType.Float32, device: idsKeep.device) * 1e-3f;
        return FromNoise(score, keep).MoveToOuter(scope);
    }

    static PatchMask FromNoise(Tensor noise, int keep)
    {
        int length = (int)noise.shape[1];
        var idsShuffle = noise.argsort(dim: 1);
        var idsRestore = idsShuffle.argsort(dim: 1);
        var idsKeep = idsShuffle[.., ..keep];
        var idsMasked = idsShuffle[.., keep..];
        var mask = idsRestore.ge(keep).to_type(ScalarType.Float32);
        return new PatchMask(idsKeep, idsMasked, idsRestore, mask, length, keep);
    }

    PatchMask MoveToOuter(DisposeScope scope)
    {
        foreach (var t in new[] { IdsKeep, IdsMasked, IdsRestore, Mask }) t.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>
    /// The masks of some samples, in the order of <paramref name="rows"/> (int64 indices into the batch): a data-parallel
    /// rank draws the masks of the whole global batch and keeps its own rows.
    /// </summary>
    public PatchMask SelectRows(Tensor rows)
    {
        using var scope = NewDisposeScope();
        var r = rows.to(IdsKeep.device);
        return new PatchMask(IdsKeep.index_select(0, r), IdsMasked.index_select(0, r), IdsRestore.index_select(0, r),
            Mask.index_select(0, r.to(Mask.device)), Length, KeepCount).MoveToOuter(scope);
    }

    /// <summary>
    /// The masks of this batch stacked <paramref name="times"/> times along the batch: rows [m; m; …], for a batch that
    /// holds several inputs per sample (MC-DiT's noisy and clean tokens through one encoder or branch-decoder call).
    /// </summary>
    public PatchMask Tile(int times)
    {
        if (times < 1) throw new ArgumentOutOfRangeException(nameof(times), times, "Tile needs at least one copy.");
        using var scope = NewDisposeScope();
        Tensor T(Tensor t) => torch.cat(Enumerable.Repeat(t, times).ToArray(), 0);
        return new PatchMask(T(IdsKeep), T(IdsMasked), T(IdsRestore), T(Mask), Length, KeepCount).MoveToOuter(scope);
    }

    /// <summary>Gathers the kept tokens: [N, L, D] → [N, L_keep, D].</summary>
    public Tensor GatherKept(Tensor tokens) => Gather(tokens, IdsKeep);

    /// <summary>Gathers the masked tokens: [N, L, D] → [N, L − L_keep, D].</summary>
    public Tensor GatherMasked(Tensor tokens) => Gather(tokens, IdsMasked);

    /// <summary>
    /// Puts kept and masked tokens back in their original order: [N, L_keep, D] and [N, L − L_keep, D] → [N, L, D].
    /// </summary>
    public Tensor Restore(Tensor kept, Tensor masked)
    {
        using var scope = NewDisposeScope();
        var all = torch.cat(new[] { kept, masked }, 1);
        var index = IdsRestore.unsqueeze(-1).expand(-1, -1, all.shape[2]);
        return all.gather(1, index).MoveToOuterDisposeScope();
    }

    static Tensor Gather(Tensor tokens, Tensor ids)
    {
        using var scope = NewDisposeScope();
        var index = ids.unsqueeze(-1).expand(-1, -1, tokens.shape[2]);
        return tokens.gather(1, index).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        IdsKeep.Dispose(); IdsMasked.Dispose(); IdsRestore.Dispose(); Mask.Dispose();
    }
}
