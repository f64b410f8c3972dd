using McDit.Torch.Runtime;
using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// The weights of everything after the encoder blocks, under MaskDiT's top-level names. A module that owns them
/// (the model, or an MC-DiT branch) declares fields of exactly these names, so TorchSharp's <c>to()</c> keeps
/// them current when it moves or converts parameters.
/// </summary>
public interface IMaskedDecoderWeights
{
    /// <summary>adaLN + Linear from the encoder width to the decoder width (null without decoder).</summary>
    FinalLayer? DecoderLayer { get; }
    /// <summary>The decoder's DiT blocks (null without decoder).</summary>
    ModuleList<DiTBlock>? DecoderBlocks { get; }
    /// <summary>Fixed sin-cos positions of the decoder (null without decoder).</summary>
    Parameter? DecoderPosEmbed { get; }
    /// <summary>The learned [MASK] token (null when the model has none).</summary>
    Parameter? MaskToken { get; }
    /// <summary>adaLN + Linear to p·p·C_out.</summary>
    FinalLayer FinalLayer { get; }
}

/// <summary>
/// Everything after the encoder. With a MaskDiT decoder: <c>decoder_layer</c> (adaLN + Linear from the encoder
/// width to the decoder width), fill tokens at masked positions (the learned <c>mask_token</c>, or tokens the
/// caller gives, such as MC-DiT's clean tokens), fixed <c>decoder_pos_embed</c>, <c>decoder_blocks</c>, then
/// <c>final_layer</c>. Without a decoder (plain DiT): only <c>final_layer</c>.
/// </summary>
public static class MaskedDecoder
{
    /// <summary>Freshly initialised decoder weights for a configuration.</summary>
    public static (FinalLayer? DecoderLayer, ModuleList<DiTBlock>? DecoderBlocks, Parameter? DecoderPosEmbed, Parameter? MaskToken, FinalLayer FinalLayer)
        Create(DiffusionTransformerConfig config)
    {
        int condition = config.HiddenSize, outFeatures = config.PatchOutputFeatures;
        if (!config.HasDecoder)
            return (null, null, null, null, new FinalLayer(config.HiddenSize, condition, outFeatures));
        var decoderLayer = new FinalLayer(config.HiddenSize, condition, config.DecoderHiddenSize, normName: "norm_decoder");
        var blocks = new ModuleList<DiTBlock>(Enumerable.Range(0, config.DecoderDepth)
            .Select(_ => new DiTBlock(config.DecoderHiddenSize, condition, config.DecoderNumHeads, config.MlpRatio)).ToArray());
        var positions = new Parameter(
            SinCosPositionEmbedding.TwoD(config.DecoderHiddenSize, config.InputSize / config.PatchSize), requires_grad: false);
        Parameter? maskToken = null;
        if (config.UseMaskToken)
        {
            maskToken = new Parameter(torch.zeros(1, 1, config.DecoderHiddenSize));
            Init.Normal(maskToken, 0.02);
        }
        return (decoderLayer, blocks, positions, maskToken, new FinalLayer(config.DecoderHiddenSize, condition, outFeatures));
    }

    /// <summary>Registers the decoder weights on their owner under MaskDiT's names.</summary>
    public static void Register(nn.Module owner, IMaskedDecoderWeights w, Action<string, nn.Module> registerModule, Action<string, Parameter> registerParameter)
    {
        if (w.DecoderPosEmbed is not null) registerParameter("decoder_pos_embed", w.DecoderPosEmbed);
        if (w.DecoderLayer is not null) registerModule("decoder_layer", w.DecoderLayer);
        if (w.DecoderBlocks is not null) registerModule("decoder_blocks", w.DecoderBlocks);
        if (w.MaskToken is not null) registerParameter("mask_token", w.MaskToken);
        registerModule("final_layer", w.FinalLayer);
    }

    /// <summary>
    /// Decodes encoder tokens. Without a mask, <paramref name="encoded"/> holds all L tokens. With a mask it holds
    /// the kept tokens [N, L_keep, D] and <paramref name="fill"/> the tokens for the masked positions
    /// [N, L − L_keep, D_dec] (null: the [MASK] token). Returns patch outputs [N, L, w²·C_out] (w = <see cref="DiffusionTransformerConfig.OutputWindow"/>).
    /// </summary>
    public static Tensor Forward(IMaskedDecoderWeights w, Tensor encoded, Tensor c, PatchMask? mask, Tensor? fill)
    {
        using var scope = NewDisposeScope();
        var x = encoded;
        if (w.DecoderLayer is not null)
        {
            x = w.DecoderLayer.call(x, c);
            if (mask is not null)
            {
                if (fill is null)
                {
                    if (w.MaskToken is null)
                        throw new InvalidOperationException("This decoder has no [MASK] token: give fill tokens, or build the model with UseMaskToken.");
                    fill = w.MaskToken.expand(x.shape[0], mask.Length - mask.KeepCount, x.shape[2]);
                }
                x = mask.Restore(x, fill);
            }
            x = x.Plus(w.DecoderPosEmbed!);
            foreach (var block in w.DecoderBlocks!) x = block.call(x, c);
        }
        else if (mask is not null)
        {
            throw new InvalidOperationException("A model without decoder cannot take masked inputs: use mask ratio 0 (DiT) or add a decoder.");
        }
        return w.FinalLayer.call(x, c).MoveToOuterDisposeScope();
    }
}
