using McDit.Torch.Diffusion;
using McDit.Torch.Modules;
using McDit.Torch.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Models;

/// <summary>
/// The network behind DiT, MaskDiT and MC-DiT: a DiT encoder with adaLN-Zero blocks, optionally followed by
/// MaskDiT's light decoder, optionally with MC-DiT's clean-token inputs. Parameter names follow
/// facebookresearch/DiT and Anima-Lab/MaskDiT (x_embedder.proj, pos_embed, t_embedder.mlp.0, y_embedder.embedding_table,
/// blocks.N..., decoder_layer, decoder_blocks.N..., decoder_pos_embed, mask_token, final_layer), so state dicts convert.
/// </summary>
/// <remarks>
/// This is the raw network F(c_in·x, c_noise, y) of the EDM formulation; preconditioning lives in
/// <see cref="Diffusion.EdmPreconditioning"/> and the training objectives in <c>McDit.Torch.Training</c>.
/// </remarks>
public sealed class MaskedDiffusionTransformer : nn.Module<Tensor, Tensor, Tensor?, Tensor>, IMaskedDecoderWeights
{
    private readonly PatchEmbed x_embedder;
    private readonly Parameter pos_embed;
    private readonly TimestepEmbedder t_embedder;
    private readonly LabelEmbedder? y_embedder;
    private readonly ModuleList<DiTBlock> blocks;
    // Field names matter: TorchSharp's to() re-binds converted parameters to fields of the same name.
    private Parameter? decoder_pos_embed;
    private readonly FinalLayer? decoder_layer;
    private readonly ModuleList<DiTBlock>? decoder_blocks;
    private Parameter? mask_token;
    private readonly FinalLayer final_layer;
    private readonly PatchEmbed? clean_embedder;
    private readonly Parameter? type_embed;
    private readonly Conv2d? output_conv;

    /// <summary>The shape of this model.</summary>
    public DiffusionTransformerConfig Config { get; }

    FinalLayer? IMaskedDecoderWeights.DecoderLayer => decoder_layer;
    ModuleList<DiTBlock>? IMaskedDecoderWeights.DecoderBlocks => decoder_blocks;
    Parameter? IMaskedDecoderWeights.DecoderPosEmbed => decoder_pos_embed;
    Parameter? IMaskedDecoderWeights.MaskToken => mask_token;
    FinalLayer IMaskedDecoderWeights.FinalLayer => final_layer;

    /// <summary>Creates a model with DiT's initialisation; build it inside <c>Init.Seeded(seed)</c> for reproducible weights.</summary>
    public MaskedDiffusionTransformer(DiffusionTransformerConfig config) : base(TorchBackend.Loaded(nameof(MaskedDiffusionTransformer)))
    {
        Config = config.Validated();
        int grid = config.InputSize / config.PatchSize;
        x_embedder = new PatchEmbed(config.InChannels, config.HiddenSize, config.PatchSize);
        pos_embed = new Parameter(SinCosPositionEmbedding.TwoD(config.HiddenSize, grid), requires_grad: false);
        t_embedder = new TimestepEmbedder(config.HiddenSize);
        y_embedder = config.NumClasses > 0 ? new LabelEmbedder(config.NumClasses, config.HiddenSize, config.HasNullLabel) : null;
        blocks = new ModuleList<DiTBlock>(Enumerable.Range(0, config.Depth)
            .Select(_ => new DiTBlock(config.HiddenSize, config.HiddenSize, config.NumHeads, config.MlpRatio)).ToArray());
        (decoder_layer, decoder_blocks, decoder_pos_embed, mask_token, final_layer) = MaskedDecoder.Create(config);
        if (config.CleanDecoderInput) clean_embedder = new PatchEmbed(config.InChannels, config.DecoderHiddenSize, config.PatchSize);
        if (config.CleanEncoderInput)
        {
            type_embed = new Parameter(torch.zeros(2, config.HiddenSize));
            Init.Normal(type_embed, 0.02);
        }
        if (config.OutputConvolution)
        {
            // Starts at zero, so the network begins exactly as DiT's (whose final layer starts at zero too).
            output_conv = nn.Conv2d(config.OutChannels, config.OutChannels, 3, padding: 1);
            Init.Zero(output_conv);
        }

        register_module(nameof(x_embedder), x_embedder);
        register_parameter(nameof(pos_embed), pos_embed);
        register_module(nameof(t_embedder), t_embedder);
        if (y_embedder is not null) register_module(nameof(y_embedder), y_embedder);
        register_module(nameof(blocks), blocks);
        // MaskDiT keeps the decoder's parameters at the top level; so do we.
        MaskedDecoder.Register(this, this, register_module, register_parameter);
        if (clean_embedder is not null) register_module(nameof(clean_embedder), clean_embedder);
        if (type_embed is not null) register_parameter(nameof(type_embed), type_embed);
        if (output_conv is not null) register_module(nameof(output_conv), output_conv);
    }

    /// <summary>The null label (C) used for classifier-free guidance; −1 for unconditional models and for tables without a null row.</summary>
    public int NullLabel => y_embedder?.NullLabel ?? -1;

    /// <summary>Conditioning c = t_embedder(c_noise) + y_embedder(y): c_noise [N] (or [1]), labels [N] int64 or null (null label).</summary>
    public Tensor Condition(Tensor cNoise, Tensor? labels)
    {
        using var scope = NewDisposeScope();
        var c = t_embedder.call(cNoise.reshape(-1));
        if (y_embedder is not null)
        {
            if (labels is null && !y_embedder.HasNullLabel)
                throw new InvalidOperationException("This model's label table has no null label (it was trained without label dropout): give every sample a class.");
            labels ??= torch.full(c.shape[0], (long)y_embedder.NullLabel, dtype: ScalarType.Int64, device: c.device);
            c = c.Plus(y_embedder.call(labels));
        }
        return c.MoveToOuterDisposeScope();
    }

    /// <summary>Patch tokens with positions: [N, C, H, W] → [N, L, D].</summary>
    public Tensor Embed(Tensor x)
    {
        using var scope = NewDisposeScope();
        return x_embedder.call(x).Plus(pos_embed).MoveToOuterDisposeScope();
    }

    /// <summary>Clean tokens for the decoder (MC-DiT): [N, C, H, W] → [N, L, D_dec], without positions.</summary>
    public Tensor EmbedClean(Tensor x)
    {
        if (clean_embedder is null)
            throw new InvalidOperationException("This model has no clean-token embedding: build it with CleanDecoderInput (MC-DiT, CleanInto = Decoder).");
        return clean_embedder.call(x);
    }

    /// <summary>Adds the learned clean (1) / noisy (0) type embedding per token: tokens [N, L, D], isClean [N, L] in {0, 1}.</summary>
    public Tensor AddTypeEmbedding(Tensor tokens, Tensor isClean)
    {
        if (type_embed is null)
            throw new InvalidOperationException("This model has no clean/noisy type embedding: build it with CleanEncoderInput (MC-DiT, CleanInto = Encoder).");
        using var scope = NewDisposeScope();
        var t = isClean.to_type(tokens.dtype).unsqueeze(-1);
        return tokens.Plus(type_embed[0] * t.OneMinus()).Plus(type_embed[1] * t).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the encoder blocks: tokens [N, L', D], c [N, D] → [N, L', D].</summary>
    public Tensor Encode(Tensor tokens, Tensor c)
    {
        using var scope = NewDisposeScope();
        var x = tokens;
        foreach (var block in blocks) x = block.call(x, c);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>The decoder on encoder tokens; see <see cref="MaskedDecoder.Forward"/>.</summary>
    public Tensor Decode(Tensor encoded, Tensor c, PatchMask? mask, Tensor? fill) => MaskedDecoder.Forward(this, encoded, c, mask, fill);

    /// <summary>
    /// Patch outputs [N, L, p²·C_out] → image [N, C_out, H, W] (DiT's unpatchify), or the overlap-add of [N, L, (p + 2m)²·C_out]
    /// windows with an <see cref="DiffusionTransformerConfig.OutputOverlap"/> m &gt; 0; then y + output_conv(y) when the model has
    /// the <see cref="DiffusionTransformerConfig.OutputConvolution"/>.
    /// </summary>
    public Tensor Unpatchify(Tensor x)
    {
        using var scope = NewDisposeScope();
        int p = Config.PatchSize, c = Config.OutChannels, h = Config.InputSize / p;
        var y = Config.OutputOverlap > 0
            ? OverlapAdd.Assemble(x, p, Config.OutputOverlap, c)
            : x.reshape(x.shape[0], h, h, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(x.shape[0], c, h * p, h * p);
        if (output_conv is not null) y = y.Plus(output_conv.call(y));
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Image [N, C, H, W] → patches [N, L, p²·C] in the same layout as the network's outputs.</summary>
    public Tensor Patchify(Tensor x) => Patches.Patchify(x, Config.PatchSize);

    /// <summary>
    /// The full network on all tokens (inference, DiT training, unmasking tuning): F(x_in, c_noise, y) with
    /// x_in = c_in·x [N, C, H, W], c_noise [N], labels [N] or null → [N, C_out, H, W].
    /// </summary>
    public override Tensor forward(Tensor xIn, Tensor cNoise, Tensor? labels)
    {
        using var scope = NewDisposeScope();
        var c = Condition(cNoise, labels);
        var encoded = Encode(Embed(xIn), c);
        return Unpatchify(Decode(encoded, c, null, null)).MoveToOuterDisposeScope();
    }

    /// <summary>Parameters that the optimizer updates (excludes the fixed position embeddings).</summary>
    public IEnumerable<Parameter> TrainableParameters() => parameters().Where(p => p.requires_grad);

    /// <summary>Number of parameters, all (as DiT counts them, including the fixed position tables) or trainable only.</summary>
    public long ParameterCount(bool trainableOnly = false) =>
        parameters().Where(p => !trainableOnly || p.requires_grad).Sum(p => p.numel());
}
