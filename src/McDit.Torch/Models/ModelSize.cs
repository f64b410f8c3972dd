namespace McDit.Torch.Models;

/// <summary>DiT backbone sizes (Peebles &amp; Xie 2023) plus a CPU-sized one for small data.</summary>
public enum ModelSize
{
    /// <summary>depth 6, width 192, 6 heads: trains in minutes on a laptop CPU (our addition).</summary>
    Tiny,
    /// <summary>depth 12, width 384, 6 heads.</summary>
    S,
    /// <summary>depth 12, width 768, 12 heads.</summary>
    B,
    /// <summary>depth 24, width 1024, 16 heads.</summary>
    L,
    /// <summary>depth 28, width 1152, 16 heads.</summary>
    XL,
    /// <summary>depth 2, width 64, 4 heads: for smoke tests and CI, seconds on a CPU (our addition; not for real images).</summary>
    Micro,
}
