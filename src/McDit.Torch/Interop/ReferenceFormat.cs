namespace McDit.Torch.Interop;

/// <summary>The reference implementation whose weights a file holds (or is to hold).</summary>
public enum ReferenceFormat
{
    /// <summary>
    /// facebookresearch/DiT (<c>models.py</c>): a DiT with a label table of C + 1 rows (C without label dropout),
    /// ε-prediction on the linear DDPM schedule (<see cref="Diffusion.DiffusionFormulation.VpEpsilon"/>).
    /// <c>DiT-XL-2-256x256.pt</c> is a bare state dict; <c>train.py</c> saves <c>{model, ema, opt, args}</c>.
    /// </summary>
    DiT,
    /// <summary>
    /// Anima-Lab/MaskDiT (<c>models/maskdit.py</c>): a DiT encoder with a light decoder and a [MASK] token, a bias-free
    /// one-hot label Linear ([D, C]; all zeros is the null label), EDM preconditioning. Its scripts save and load the
    /// EDM wrapper's state dict (names prefixed <c>model.</c>) under <c>model</c> and <c>ema</c>.
    /// </summary>
    MaskDiT,
}

/// <summary>How an exported <c>.pt</c> file is laid out.</summary>
public enum ReferenceLayout
{
    /// <summary>The reference's default: <see cref="Bare"/> for DiT, <see cref="Checkpoint"/> for MaskDiT.</summary>
    Default,
    /// <summary>A bare state dict (an OrderedDict of tensors) under the module's own names, like <c>DiT-XL-2-256x256.pt</c>.</summary>
    Bare,
    /// <summary>
    /// A training checkpoint dict <c>{"model": …, "ema": …}</c>, as the reference train scripts write and their samplers read
    /// (MaskDiT's names carry its EDM wrapper's prefix <c>model.</c>).
    /// </summary>
    Checkpoint,
}
