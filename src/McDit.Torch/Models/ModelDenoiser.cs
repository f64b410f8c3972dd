using McDit.Torch.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Models;

/// <summary>Wraps a network as an EDM denoiser D(x; σ, y) = c_skip·x + c_out·F(c_in·x, ln σ / 4, y) for the samplers.</summary>
public static class ModelDenoiser
{
    /// <summary>The denoiser of <paramref name="model"/> in eval mode, without gradients, on all tokens.</summary>
    public static Denoiser Create(MaskedDiffusionTransformer model, double sigmaData = 0.5)
    {
        var edm = new EdmPreconditioning(sigmaData);
        var computeType = model.parameters().First().dtype;
        int channels = model.Config.InChannels;
        return (x, sigma, labels) =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var s = sigma.reshape(-1, 1, 1, 1);
            var f = model.call((edm.CIn(s) * x).to_type(computeType), edm.CNoise(sigma).to_type(computeType), labels);
            var d = edm.CSkip(s) * x + edm.COut(s) * f.to_type(ScalarType.Float32)[.., ..channels];
            return d.MoveToOuterDisposeScope();
        };
    }
}
