namespace McDit.Torch.Training;

/// <summary>Which training method a model is trained with; all three run through one objective.</summary>
public enum TrainingMethod
{
    /// <summary>DiT: denoising on all tokens, no masking, no decoder.</summary>
    DiT,
    /// <summary>MaskDiT: encoder on visible tokens, decoder with [MASK] tokens, MAE term on the noisy input.</summary>
    MaskDiT,
    /// <summary>MC-DiT: clean-to-clean mask reconstruction with complementary noisy and clean EMA decoder branches.</summary>
    McDiT,
}

/// <summary>Where MC-DiT brings the clean tokens of the masked positions in.</summary>
public enum CleanInto
{
    /// <summary>Into the decoder, through their own patch embedding, in place of the [MASK] token (default; cheap).</summary>
    Decoder,
    /// <summary>Into the encoder with a learned clean/noisy type embedding (full-sequence encoder compute).</summary>
    Encoder,
}

/// <summary>What MC-DiT's main branch reconstructs at the masked positions (the paper's ablation).</summary>
public enum ReconstructionTarget
{
    /// <summary>Only the denoising loss on the visible tokens (no term on masked tokens).</summary>
    CleanOnly,
    /// <summary>Also regress the clean patches x0 at the masked positions.</summary>
    AllClean,
    /// <summary>Also the MaskDiT-style patch-normalised noisy term at the masked positions (the paper's best).</summary>
    CleanAndNoisy,
}

/// <summary>What an MC-DiT EMA branch copies from the main model.</summary>
public enum BranchScope
{
    /// <summary>The decoder only; the branch loss trains the shared encoder through the frozen copy.</summary>
    Decoder,
    /// <summary>The decoder and the encoder blocks; only the shared embedders receive the branch gradients.</summary>
    DecoderAndEncoder,
}

/// <summary>Arithmetic precision of the forward and backward passes.</summary>
public enum TrainingPrecision
{
    /// <summary>float32 everywhere.</summary>
    Float32,
    /// <summary>bfloat16 network with float32 master weights, optimizer state, EMA, preconditioning and loss (meant for CUDA).</summary>
    BFloat16,
}
