using System.Text.Json.Serialization;
using McDit.Torch.Diffusion;

namespace McDit.Torch.Models;

/// <summary>
/// Shape of a (masked) diffusion transformer: the DiT encoder, the optional MaskDiT decoder and the optional
/// MC-DiT inputs. Serialised as JSON beside the weights (config.json), like DiT and diffusers; reading one requires every
/// field, so a truncated config is an error rather than a silent default, except those added later (<see cref="HasNullLabel"/>,
/// <see cref="Formulation"/> for imported models, <see cref="OutputConvolution"/>), whose defaults are what every older config meant.
/// </summary>
public sealed record DiffusionTransformerConfig
{
    /// <summary>Input height and width (square inputs), e.g. 32 for 32×32 latents or padded 28×28 images.</summary>
    [JsonRequired] public int InputSize { get; init; } = 32;
    /// <summary>Input channels (1 for grey images, 3 for RGB, 4 for SD-VAE latents).</summary>
    [JsonRequired] public int InChannels { get; init; } = 4;
    /// <summary>Patch size p (2, 4 or 8 in the DiT presets).</summary>
    [JsonRequired] public int PatchSize { get; init; } = 2;
    /// <summary>Encoder width D.</summary>
    [JsonRequired] public int HiddenSize { get; init; } = 384;
    /// <summary>Number of encoder blocks.</summary>
    [JsonRequired] public int Depth { get; init; } = 12;
    /// <summary>Attention heads of the encoder.</summary>
    [JsonRequired] public int NumHeads { get; init; } = 6;
    /// <summary>MLP width as a multiple of the model width.</summary>
    [JsonRequired] public double MlpRatio { get; init; } = 4.0;
    /// <summary>Number of classes C; 0 makes an unconditional model (no label embedding).</summary>
    [JsonRequired] public int NumClasses { get; init; } = 10;
    /// <summary>DiT's learned variance: 2·C output channels (only the first C are used by EDM).</summary>
    [JsonRequired] public bool LearnSigma { get; init; }

    /// <summary>Decoder blocks; 0 means no decoder (plain DiT).</summary>
    [JsonRequired] public int DecoderDepth { get; init; }
    /// <summary>Decoder width.</summary>
    [JsonRequired] public int DecoderHiddenSize { get; init; }
    /// <summary>Decoder attention heads.</summary>
    [JsonRequired] public int DecoderNumHeads { get; init; }
    /// <summary>A learned [MASK] token at masked positions of the decoder input (MaskDiT, MC-DiT branches).</summary>
    [JsonRequired] public bool UseMaskToken { get; init; }
    /// <summary>MC-DiT: a patch embedding that brings clean tokens into the decoder at masked positions.</summary>
    [JsonRequired] public bool CleanDecoderInput { get; init; }
    /// <summary>MC-DiT with clean tokens into the encoder: a learned clean/noisy type embedding.</summary>
    [JsonRequired] public bool CleanEncoderInput { get; init; }

    /// <summary>
    /// The label table has a null-label row C for classifier-free guidance (C + 1 rows). False for models trained without
    /// label dropout (a DiT table of C rows): they cannot sample unconditionally or with guidance. Default true.
    /// </summary>
    public bool HasNullLabel { get; init; } = true;
    /// <summary>
    /// What the network predicts and how it sees the noise level: <see cref="DiffusionFormulation.Edm"/> (McDit, MaskDiT;
    /// the default) or <see cref="DiffusionFormulation.VpEpsilon"/> (DiT's ε-prediction on the DDPM schedule).
    /// </summary>
    public DiffusionFormulation Formulation { get; init; } = DiffusionFormulation.Edm;
    /// <summary>
    /// A learned 3×3 convolution over the assembled output image, added to it (y + conv(y), starting at zero), as U-ViT's
    /// final convolution (Bao et al. 2023): every output pixel can then draw on its neighbours across patch borders, which the
    /// per-token linear projection cannot. Not in DiT or MaskDiT (models with it do not export to them). Default false.
    /// </summary>
    public bool OutputConvolution { get; init; }
    /// <summary>
    /// Overlapping output patches, in pixels m on each side: the final layer predicts a (p + 2m)×(p + 2m) window centred on each
    /// token's p×p patch, and the image is their overlap-add under a window that ramps over the 2m pixels around each patch
    /// border, normalised by the summed weights (<see cref="Modules.OverlapAdd"/>). Neighbouring tokens then blend across
    /// every border instead of meeting at it, which is what makes the p×p grid visible in the samples of small models. 0 (the
    /// default) is DiT's plain patches; at most p / 2 (a tent over 2p pixels). The final linear grows from p²·C_out to
    /// (p + 2m)²·C_out outputs; nothing else changes. Not in DiT or MaskDiT (models with it do not export to them).
    /// </summary>
    public int OutputOverlap { get; init; }

    /// <summary>Rows of the label table: C + 1 with the null label, C without, 0 for unconditional models.</summary>
    [JsonIgnore] public int LabelTableRows => NumClasses == 0 ? 0 : NumClasses + (HasNullLabel ? 1 : 0);

    /// <summary>Output channels: C, or 2·C with learned variance.</summary>
    [JsonIgnore] public int OutChannels => LearnSigma ? 2 * InChannels : InChannels;
    /// <summary>Tokens per sample L = (InputSize / PatchSize)².</summary>
    [JsonIgnore] public int NumPatches => (InputSize / PatchSize) * (InputSize / PatchSize);
    /// <summary>Side of the output window each token predicts: p + 2·<see cref="OutputOverlap"/>.</summary>
    [JsonIgnore] public int OutputWindow => PatchSize + 2 * OutputOverlap;
    /// <summary>Outputs of the final linear per token: <see cref="OutputWindow"/>² · <see cref="OutChannels"/>.</summary>
    [JsonIgnore] public int PatchOutputFeatures => OutputWindow * OutputWindow * OutChannels;
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
            ModelSize.Micro => (2, 64, 4),
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
    /// B, L and XL; 4 × 256 × 8 for S; 2 × 128 × 4 for Tiny; 1 × 64 × 4 for Micro (recorded in docs/method-choices.md).
    /// </summary>
    public DiffusionTransformerConfig WithDefaultDecoder()
    {
        var (depth, width, heads) = HiddenSize switch
        {
            <= 64 => (1, 64, 4),
            <= 192 => (2, 128, 4),
            <= 384 => (4, 256, 8),
            _ => (8, 512, 16),
        };
        return this with { DecoderDepth = depth, DecoderHiddenSize = width, DecoderNumHeads = heads };
    }

    /// <summary>
    /// Checks that the shape is consistent and within <see cref="ModelLimits"/>, and returns it; throws
    /// <see cref="ArgumentException"/> naming the offending field otherwise. Call it (or <see cref="Validated(string)"/>)
    /// before building a network from a config that came from a file: the bounds keep a damaged or hostile config from
    /// allocating more than <see cref="ModelLimits.MaxParameters"/> parameters.
    /// </summary>
    public DiffusionTransformerConfig Validated()
    {
        static void Require(bool ok, string field, object value, string expected)
        {
            if (!ok) throw new ArgumentException($"Model config {field} = {value} is invalid: expected {expected}.", field);
        }
        Require(InChannels > 0 && InChannels <= ModelLimits.MaxChannels, nameof(InChannels), InChannels, $"a channel count in 1..{ModelLimits.MaxChannels}");
        Require(PatchSize > 0 && PatchSize <= ModelLimits.MaxPatchSize, nameof(PatchSize), PatchSize, $"a patch size in 1..{ModelLimits.MaxPatchSize}");
        Require(InputSize > 0 && InputSize <= ModelLimits.MaxInputSize && InputSize % PatchSize == 0, nameof(InputSize), InputSize,
            $"a multiple of the patch size {PatchSize} in 1..{ModelLimits.MaxInputSize}");
        Require(OutputOverlap >= 0 && OutputOverlap <= PatchSize / 2, nameof(OutputOverlap), OutputOverlap,
            $"an overlap in 0..{PatchSize / 2} pixels (half the patch size {PatchSize}: only neighbouring windows may overlap)");
        Require(NumPatches <= ModelLimits.MaxTokens, nameof(InputSize), InputSize, $"at most {ModelLimits.MaxTokens} tokens ((InputSize / PatchSize)²; patch size {PatchSize})");
        Require(HiddenSize > 0 && HiddenSize % 4 == 0 && HiddenSize <= ModelLimits.MaxWidth, nameof(HiddenSize), HiddenSize, $"a positive multiple of 4 up to {ModelLimits.MaxWidth}");
        Require(NumHeads > 0 && HiddenSize % NumHeads == 0, nameof(NumHeads), NumHeads, $"a divisor of the width {HiddenSize}");
        Require(Depth >= 0 && Depth <= ModelLimits.MaxDepth, nameof(Depth), Depth, $"a block count in 0..{ModelLimits.MaxDepth}");
        Require(NumClasses >= 0 && NumClasses <= ModelLimits.MaxClasses, nameof(NumClasses), NumClasses, $"a class count in 0..{ModelLimits.MaxClasses} (0 = unconditional)");
        Require(double.IsFinite(MlpRatio) && MlpRatio > 0 && MlpRatio <= ModelLimits.MaxMlpRatio, nameof(MlpRatio), MlpRatio, $"a ratio in (0, {ModelLimits.MaxMlpRatio}]");
        Require((int)(HiddenSize * MlpRatio) >= 1, nameof(MlpRatio), MlpRatio, $"at least one MLP unit for the width {HiddenSize}");
        Require(DecoderDepth >= 0 && DecoderDepth <= ModelLimits.MaxDepth, nameof(DecoderDepth), DecoderDepth, $"a block count in 0..{ModelLimits.MaxDepth} (0 = no decoder)");
        if (HasDecoder)
        {
            Require(DecoderHiddenSize > 0 && DecoderHiddenSize % 4 == 0 && DecoderHiddenSize <= ModelLimits.MaxWidth, nameof(DecoderHiddenSize), DecoderHiddenSize,
                $"a positive multiple of 4 up to {ModelLimits.MaxWidth}");
            Require(DecoderNumHeads > 0 && DecoderHiddenSize % DecoderNumHeads == 0, nameof(DecoderNumHeads), DecoderNumHeads, $"a divisor of the decoder width {DecoderHiddenSize}");
            Require((int)(DecoderHiddenSize * MlpRatio) >= 1, nameof(MlpRatio), MlpRatio, $"at least one MLP unit for the decoder width {DecoderHiddenSize}");
        }
        Require(!CleanDecoderInput || HasDecoder, nameof(CleanDecoderInput), CleanDecoderInput, "a decoder (DecoderDepth > 0)");
        Require(Enum.IsDefined(Formulation), nameof(Formulation), Formulation, "Edm or VpEpsilon");
        Require(!UseMaskToken || HasDecoder, nameof(UseMaskToken), UseMaskToken, "a decoder (DecoderDepth > 0)");
        long count = StateElementCount();
        Require(count <= ModelLimits.MaxParameters, "size", $"{count:N0} parameters", $"at most {ModelLimits.MaxParameters:N0} (lower Depth, HiddenSize, MlpRatio or the decoder)");
        return this;
    }

    /// <summary>
    /// Like <see cref="Validated()"/> for a config read from <paramref name="source"/> (a file, a zip entry): a bad value is
    /// an <see cref="InvalidDataException"/> that names the source.
    /// </summary>
    public DiffusionTransformerConfig Validated(string source)
    {
        try { return Validated(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
    }

    /// <summary>
    /// Number of elements of the network's state dict (trainable parameters and the fixed position tables), computed from
    /// the shape alone, without building the network: a loader compares it with the size of a weights file before it
    /// allocates anything. Assumes the field ranges of <see cref="Validated()"/> (huge values saturate at <see cref="long.MaxValue"/>).
    /// </summary>
    public long StateElementCount()
    {
        try
        {
            checked
            {
                long d = HiddenSize, tokens = (long)(InputSize / Math.Max(PatchSize, 1)) * (InputSize / Math.Max(PatchSize, 1));
                long outFeatures = (long)(PatchSize + 2 * OutputOverlap) * (PatchSize + 2 * OutputOverlap) * OutChannels;
                long Linear(long input, long output) => input * output + output;
                long Block(long width, long condition)
                {
                    long mlp = (int)(width * MlpRatio); // as DiTBlock rounds it
                    return Linear(width, 3 * width) + Linear(width, width)                     // attn.qkv, attn.proj
                        + Linear(width, mlp) + Linear(mlp, width)                              // mlp.fc1, mlp.fc2
                        + Linear(condition, 6 * width);                                        // adaLN_modulation.1
                }
                long FinalLayer(long width, long condition, long output) => Linear(width, output) + Linear(condition, 2 * width);
                long PatchEmbed(long width) => width * InChannels * PatchSize * PatchSize + width;

                long n = PatchEmbed(d) + tokens * d                                            // x_embedder, pos_embed
                    + Linear(256, d) + Linear(d, d)                                            // t_embedder.mlp.0, .2
                    + (long)LabelTableRows * d                                                 // y_embedder (with the null label)
                    + Depth * Block(d, d);
                if (HasDecoder)
                {
                    long dd = DecoderHiddenSize;
                    n += FinalLayer(d, d, dd) + DecoderDepth * Block(dd, d) + tokens * dd     // decoder_layer, decoder_blocks, decoder_pos_embed
                        + FinalLayer(dd, d, outFeatures)
                        + (UseMaskToken ? dd : 0) + (CleanDecoderInput ? PatchEmbed(dd) : 0);
                }
                else n += FinalLayer(d, d, outFeatures);
                if (CleanEncoderInput) n += 2 * d;                                             // type_embed
                if (OutputConvolution) n += 9L * OutChannels * OutChannels + OutChannels;      // output_conv
                return n;
            }
        }
        catch (OverflowException) { return long.MaxValue; }
    }
}
