namespace McDit.Torch.Models;

/// <summary>
/// The largest values <see cref="DiffusionTransformerConfig.Validated()"/> accepts. They are far above every published
/// DiT/MaskDiT configuration (DiT-XL/2: depth 28, width 1152, 675 M parameters) and exist so that a damaged or hostile
/// config cannot make a loader allocate without bound before any weight is read.
/// </summary>
public static class ModelLimits
{
    /// <summary>Input channels (images: 1 or 3; SD-VAE latents: 4).</summary>
    public const int MaxChannels = 64;
    /// <summary>Input height and width.</summary>
    public const int MaxInputSize = 4096;
    /// <summary>Patch size.</summary>
    public const int MaxPatchSize = 64;
    /// <summary>Tokens per sample, (InputSize / PatchSize)².</summary>
    public const int MaxTokens = 65_536;
    /// <summary>Encoder or decoder width.</summary>
    public const int MaxWidth = 16_384;
    /// <summary>Encoder or decoder blocks.</summary>
    public const int MaxDepth = 512;
    /// <summary>Classes (ImageNet-21k has 21,841).</summary>
    public const int MaxClasses = 1_000_000;
    /// <summary>MLP width as a multiple of the model width.</summary>
    public const double MaxMlpRatio = 64;
    /// <summary>Elements of the network's state dict (<see cref="DiffusionTransformerConfig.StateElementCount"/>): 20 billion.</summary>
    public const long MaxParameters = 20_000_000_000;
}
