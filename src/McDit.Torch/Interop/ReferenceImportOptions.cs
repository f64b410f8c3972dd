namespace McDit.Torch.Interop;

/// <summary>
/// What to take from a reference checkpoint and the parts of its shape that tensor shapes do not tell. Every null
/// setting is inferred: from the shapes, else from the checkpoint's <c>args</c>, else from the DiT presets.
/// </summary>
public sealed record ReferenceImportOptions
{
    /// <summary>
    /// Take the weight EMA (<c>ema</c>) of a training checkpoint rather than its trained weights (<c>model</c>). A bare
    /// state dict is taken as it is either way (DiT-XL-2-256x256.pt is already the EMA).
    /// </summary>
    public bool UseEma { get; init; }
    /// <summary>Attention heads of the encoder; inferred from the width for the DiT sizes (384: 6, 768: 12, 1024 and 1152: 16).</summary>
    public int? NumHeads { get; init; }
    /// <summary>Attention heads of MaskDiT's decoder; inferred from its width (512: 16, as MaskDiT; 256: 8; 128 and 64: 4).</summary>
    public int? DecoderNumHeads { get; init; }
    /// <summary>
    /// Number of classes C. A DiT table of C + 1 rows has the null label (models trained with label dropout), one of C
    /// rows has none; without this setting (and without <c>args.num_classes</c>) a DiT table of R rows is read as R − 1
    /// classes and the null label, DiT's default.
    /// </summary>
    public int? NumClasses { get; init; }
}
