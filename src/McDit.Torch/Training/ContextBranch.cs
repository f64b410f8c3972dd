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
public sealed class ContextBranch : nn.Module
{
    private readonly MaskedDecoder _decoder;
    private readonly ModuleList<DiTBlock>? blocks;

    /// <summary>Creates a branch as a copy of the main model's current weights.</summary>
    public ContextBranch(MaskedDiffusionTransformer model, BranchScope scope) : base(nameof(ContextBranch))
    {
        var config = model.Config;
        _decoder = new MaskedDecoder(config);
        foreach (var (name, p) in _decoder.named_parameters(recurse: false)) register_parameter(name, p);
        foreach (var (name, m) in _decoder.named_children()) register_module(name, m);
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
    public Tensor Decode(Tensor encodedKept, Tensor c, PatchMask mask) => _decoder.Forward(encodedKept, c, mask, null);
}
