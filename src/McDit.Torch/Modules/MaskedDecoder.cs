using McDit.Torch.Diffusion;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// Everything after the encoder blocks. With a MaskDiT decoder: <c>decoder_layer</c> (adaLN + Linear from the
/// encoder width to the decoder width), fill tokens at masked positions (the learned <c>mask_token</c>, or any
/// tokens the caller gives, such as MC-DiT's clean tokens), fixed <c>decoder_pos_embed</c>,
/// <c>decoder_blocks</c>, then <c>final_layer</c>. Without a decoder (plain DiT): only <c>final_layer</c>.
/// </summary>
/// <remarks>
/// The main model registers these parameters at its top level under the same names (MaskDiT's layout), and
/// MC-DiT's EMA branches are further instances of this module, so branch weights line up by name.
/// </remarks>
public sealed class MaskedDecoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly FinalLayer? decoder_layer;
    private readonly ModuleList<DiTBlock>? decoder_blocks;
    private readonly Parameter? decoder_pos_embed;
    private readonly Parameter? mask_token;
    private readonly FinalLayer final_layer;

    /// <summary>Width of the tokens entering the decoder blocks (the decoder width, or the encoder width without decoder).</summary>
    public int TokenWidth { get; }

    /// <summary>True when this decoder has a learned [MASK] token.</summary>
    public bool HasMaskToken => mask_token is not null;

    /// <summary>True when this is a MaskDiT decoder (not only DiT's final layer).</summary>
    public bool HasDecoderBlocks => decoder_blocks is not null;

    /// <summary>Creates the decoder for a model configuration.</summary>
    public MaskedDecoder(Models.DiffusionTransformerConfig config) : base(nameof(MaskedDecoder))
    {
        int condition = config.HiddenSize, outFeatures = config.PatchSize * config.PatchSize * config.OutChannels;
        if (config.HasDecoder)
        {
            TokenWidth = config.DecoderHiddenSize;
            decoder_layer = new FinalLayer(config.HiddenSize, condition, config.DecoderHiddenSize, normName: "norm_decoder");
            decoder_blocks = new ModuleList<DiTBlock>(Enumerable.Range(0, config.DecoderDepth)
                .Select(_ => new DiTBlock(config.DecoderHiddenSize, condition, config.DecoderNumHeads, config.MlpRatio)).ToArray());
            decoder_pos_embed = new Parameter(
                SinCosPositionEmbedding.TwoD(config.DecoderHiddenSize, config.InputSize / config.PatchSize), requires_grad: false);
            if (config.UseMaskToken)
            {
                mask_token = new Parameter(torch.zeros(1, 1, config.DecoderHiddenSize));
                Init.Normal(mask_token, 0.02);
            }
        }
        else
        {
            TokenWidth = config.HiddenSize;
        }
        final_layer = new FinalLayer(TokenWidth, condition, outFeatures);
        RegisterComponents();
    }

    /// <summary>Without a mask: encoder tokens [N, L, D] and conditioning c [N, D] → patch outputs [N, L, p²·C_out].</summary>
    public override Tensor forward(Tensor encoded, Tensor c) => Forward(encoded, c, null, null);

    /// <summary>
    /// Decodes encoder tokens. With a mask, <paramref name="encoded"/> holds the kept tokens [N, L_keep, D] and
    /// <paramref name="fill"/> the tokens for the masked positions [N, L − L_keep, D_dec] (null: the [MASK] token).
    /// </summary>
    public Tensor Forward(Tensor encoded, Tensor c, PatchMask? mask, Tensor? fill)
    {
        using var scope = NewDisposeScope();
        var x = encoded;
        if (decoder_layer is not null)
        {
            x = decoder_layer.call(x, c);
            if (mask is not null)
            {
                if (fill is null)
                {
                    if (mask_token is null)
                        throw new InvalidOperationException("This decoder has no [MASK] token: give fill tokens, or build the model with UseMaskToken.");
                    fill = mask_token.expand(x.shape[0], mask.Length - mask.KeepCount, TokenWidth);
                }
                x = mask.Restore(x, fill);
            }
            x = x + decoder_pos_embed!;
            foreach (var block in decoder_blocks!) x = block.call(x, c);
        }
        else if (mask is not null)
        {
            throw new InvalidOperationException("A model without decoder cannot take masked inputs: use mask ratio 0 (DiT) or add a decoder.");
        }
        return final_layer.call(x, c).MoveToOuterDisposeScope();
    }
}
