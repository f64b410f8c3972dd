using System.Text.Json.Serialization;

namespace McDit.Torch.Models;

/// <summary>
/// Shape of a (masked) diffusion transformer: the DiT encoder, the optional MaskDiT decoder and the optional
/// MC-DiT inputs. Serialised as JSON beside the weights (config.json), like DiT and diffusers.
/// </summary>
public sealed record DiffusionTransformerConfig
{
    /// <summary>Input height and width (square inputs), e.g. 32 for 32×32 latents or padded 28×28 images.</summary>
    public int InputSize { get; init; } = 32;
    /// <summary>Input channels (1 for grey images, 3 for RGB, 4 for SD-VAE latents).</summary>
    public int InChannels { get; init; } = 4;
    /// <summary>Patch size p (2, 4 or 8 in the DiT presets).</summary>
    public int PatchSize { get; init; } = 2;
    /// <summary>Encoder width D.</summary>
    public int HiddenSize { get; init; } = 384;
    /// <summary>Number of encoder blocks.</summary>
    public int Depth { get; init; } = 12;
    /// <summary>Attention heads of the encoder.</summary>
    public int NumHeads { get; init; } = 6;
    /// <summary>MLP width as a multiple of the model width.</summary>
    public double MlpRatio { get; init; } = 4.0;
    /// <summary>Number of classes C; 0 makes an unconditional model (no label embedding).</summary>
    public int NumClasses { get; init; } = 10;
    /// <summary>DiT's learned variance: 2·C output channels (only the first C are used by EDM).</summary>
    public bool LearnSigma { get; init; }

    /// <summary>Decoder blocks; 0 means no decoder (plain DiT).</summary>
    public int DecoderDepth { get; init; }
    /// <summary>Decoder width.</summary>
    public int DecoderHiddenSize { get; init; }
    /// <summary>Decoder attention heads.</summary>
    public int DecoderNumHeads { get; init; }
    /// <summary>A learned [MASK] token at masked positions of the decoder input (MaskDiT, MC-DiT branches).</summary>
    public bool UseMaskToken { get; init; }
    /// <summary>MC-DiT: a patch embedding that brings clean tokens into the decoder at masked positions.</summary>
    public bool CleanDecoderInput { get; init; }
    /// <summary>MC-DiT with clean tokens into the encoder: a learned clean/noisy type embedding.</summary>
    public bool CleanEncoderInput { get; init; }

    /// <summary>Output channels: C, or 2·C with learned variance.</summary>
    [JsonIgnore] public int OutChannels => LearnSigma ? 2 * InChannels : InChannels;
    /// <summary>Tokens per sample L = (InputSize / PatchSize)².</summary>
    [JsonIgnore] public int NumPatches => (InputSize / PatchSize) * (InputSize / PatchSize);
    /// <summary>True when the model has a MaskDiT decoder.</summary>
    [JsonIgnore] public bool HasDecoder => DecoderDepth > 0;

    /// <summary>A DiT preset such as DiT-S/2: size and patch size, without decoder.</summary>
    public static DiffusionTransformerConfig Preset(ModelSize size, int patchSize, int inputSize, int inChannels, int numClasses)
    {
        var (depth, width, heads) = size switch
        {
            ModelSize.Tiny => (6, 192, 6),
            ModelSize.S => (12, 384, 6),
            ModelSize.B => (12, 768, 12),
            ModelSize.L => (24, 1024, 16),
            ModelSize.XL => (28, 1152, 16),
            _ => throw new ArgumentOutOfRangeException(nameof(size), size, "Unknown model size."),
        };
        return new DiffusionTransformerConfig
        {
            InputSize = inputSize, InChannels = inChannels, PatchSize = patchSize,
            HiddenSize = width, Depth = depth, NumHeads = heads, NumClasses = numClasses,
        }.Validated();
    }

    /// <summary>
    /// Parses names like "DiT-S/2", "XL/4" or "Tiny/2" into (size, patch size).
    /// </summary>
    public static (ModelSize Size, int PatchSize) ParseName(string name)
    {
        var n = name.Trim();
        if (n.StartsWith("DiT-", StringComparison.OrdinalIgnoreCase)) n = n[4..];
        var parts = n.Split('/');
        if (parts.Length == 2 && Enum.TryParse<ModelSize>(parts[0], true, out var size) && int.TryParse(parts[1], out var p) && p > 0)
            return (size, p);
        throw new ArgumentException($"Model '{name}' is not a known preset: expected Tiny|S|B|L|XL/patch, e.g. DiT-S/2.", nameof(name));
    }

    /// <summary>
    /// The decoder this project uses with an encoder of a given size: MaskDiT's 8 blocks × 512 × 16 heads for
    /// B, L and XL; 4 × 256 × 8 for S; 2 × 128 × 4 for Tiny (both recorded in docs/method-choices.md).
    /// </summary>
    public DiffusionTransformerConfig WithDefaultDecoder()
    {
        var (depth, width, heads) = HiddenSize switch
        {
            <= 192 => (2, 128, 4),
            <= 384 => (4, 256, 8),
            _ => (8, 512, 16),
        };
        return this with { DecoderDepth = depth, DecoderHiddenSize = width, DecoderNumHeads = heads };
    }

    /// <summary>Checks that the shape is consistent and returns it; throws with the offending field otherwise.</summary>
    public DiffusionTransformerConfig Validated()
    {
        static void Require(bool ok, string field, object value, string expected)
        {
            if (!ok) throw new ArgumentException($"Model config {field} = {value} is invalid: expected {expected}.", field);
        }
        Require(InChannels > 0, nameof(InChannels), InChannels, "a positive channel count");
        Require(PatchSize > 0, nameof(PatchSize), PatchSize, "a positive patch size");
        Require(InputSize > 0 && InputSize % PatchSize == 0, nameof(InputSize), InputSize, $"a positive multiple of the patch size {PatchSize}");
        Require(HiddenSize > 0 && HiddenSize % 4 == 0, nameof(HiddenSize), HiddenSize, "a positive multiple of 4");
        Require(NumHeads > 0 && HiddenSize % NumHeads == 0, nameof(NumHeads), NumHeads, $"a divisor of the width {HiddenSize}");
        Require(Depth >= 0, nameof(Depth), Depth, "≥ 0");
        Require(NumClasses >= 0, nameof(NumClasses), NumClasses, "≥ 0 (0 = unconditional)");
        Require(MlpRatio > 0, nameof(MlpRatio), MlpRatio, "> 0");
        if (HasDecoder)
        {
            Require(DecoderHiddenSize > 0 && DecoderHiddenSize % 4 == 0, nameof(DecoderHiddenSize), DecoderHiddenSize, "a positive multiple of 4");
            Require(DecoderNumHeads > 0 && DecoderHiddenSize % DecoderNumHeads == 0, nameof(DecoderNumHeads), DecoderNumHeads, $"a divisor of the decoder width {DecoderHiddenSize}");
        }
        Require(!CleanDecoderInput || HasDecoder, nameof(CleanDecoderInput), CleanDecoderInput, "a decoder (DecoderDepth > 0)");
        Require(!UseMaskToken || HasDecoder, nameof(UseMaskToken), UseMaskToken, "a decoder (DecoderDepth > 0)");
        return this;
    }
}
