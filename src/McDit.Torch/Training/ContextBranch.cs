using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// One of MC-DiT's complementary branches: a frozen EMA copy of the main model's decoder (and, with
/// <see cref="BranchScope.DecoderAndEncoder"/>, of its encoder blocks). Its parameter names equal the main
/// model's, so the EMA update matches them by name.
/// </summary>
public sealed class ContextBranch : nn.Module, IMaskedDecoderWeights
{
    // Field names matter: TorchSharp's to() re-binds converted parameters to fields of the same name.
    private Parameter? decoder_pos_embed;
    private readonly FinalLayer? decoder_layer;
    private readonly ModuleList<DiTBlock>? decoder_blocks;
    private Parameter? mask_token;
    private readonly FinalLayer final_layer;
    private readonly ModuleList<DiTBlock>? blocks;

    FinalLayer? IMaskedDecoderWeights.DecoderLayer => decoder_layer;
    ModuleList<DiTBlock>? IMaskedDecoderWeights.DecoderBlocks => decoder_blocks;
    Parameter? IMaskedDecoderWeights.DecoderPosEmbed => decoder_pos_embed;
    Parameter? IMaskedDecoderWeights.MaskToken => mask_token;
    FinalLayer IMaskedDecoderWeights.FinalLayer => final_layer;

    /// <summary>Creates a branch as a copy of the main model's current weights.</summary>
    public ContextBranch(MaskedDiffusionTransformer model, BranchScope scope) : base(nameof(ContextBranch))
    {
        var config = model.Config;
        (decoder_layer, decoder_blocks, decoder_pos_embed, mask_token, final_layer) = MaskedDecoder.Create(config);
        MaskedDecoder.Register(this, this, register_module, register_parameter);
        if (scope == BranchScope.DecoderAndEncoder)
        {
            blocks = new ModuleList<DiTBlock>(Enumerable.Range(0, config.Depth)
                .Select(_ => new DiTBlock(config.HiddenSize, config.HiddenSize, config.NumHeads, config.MlpRatio)).ToArray());
            register_module(nameof(blocks), blocks);
        }
        var reference = model.parameters().First();
        this.to(reference.dtype).to(reference.device);
        ExponentialMovingAverage.CopyInto(this, ExponentialMovingAverage.NamedParameters(model));
        ExponentialMovingAverage.Frozen(this);
    }

    /// <summary>True when the branch holds its own encoder copy (<see cref="BranchScope.DecoderAndEncoder"/>).</summary>
    public bool HasOwnEncoder => blocks is not null;

    /// <summary>Encodes tokens with the branch's own encoder copy, or with the main model's encoder.</summary>
    public Tensor Encode(MaskedDiffusionTransformer model, Tensor tokens, Tensor c)
    {
        if (blocks is null) return model.Encode(tokens, c);
        using var scope = NewDisposeScope();
        var x = tokens;
        foreach (var block in blocks) x = block.call(x, c);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Decodes kept tokens with [MASK] tokens at the masked positions → [N, L, p²·C_out].</summary>
    public Tensor Decode(Tensor encodedKept, Tensor c, PatchMask mask) => MaskedDecoder.Forward(this, encodedKept, c, mask, null);
}
