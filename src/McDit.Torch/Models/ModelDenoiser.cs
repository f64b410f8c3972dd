using McDit.Torch.Diffusion;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Models;

/// <summary>
/// Wraps a network as an EDM denoiser D(x; σ, y) for the EDM samplers, whatever its formulation, and as DiT's DDPM network.
/// </summary>
public static class ModelDenoiser
{
    /// <summary>
    /// The denoiser of <paramref name="model"/> in eval mode, without gradients, on all tokens. An EDM network gives
    /// D = c_skip·x + c_out·F(c_in·x, ln σ / 4, y); a DDPM ε-network (<see cref="DiffusionFormulation.VpEpsilon"/>, DiT's
    /// weights) is called at x_t = x / √(1 + σ²) and the fractional timestep of σ on its schedule, and gives D = x − σ·ε.
    /// </summary>
    public static Denoiser Create(MaskedDiffusionTransformer model, double sigmaData = 0.5)
    {
        var computeType = model.parameters().First().dtype;
        int channels = model.Config.InChannels;
        if (model.Config.Formulation == DiffusionFormulation.VpEpsilon)
        {
            var schedule = new DdpmSchedule(1000);
            return (x, sigma, labels) =>
            {
                using var _ = no_grad();
                using var scope = NewDisposeScope();
                var sigmas = sigma.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
                var t = torch.tensor(sigmas.Select(s => (float)schedule.TimestepOf(s)).ToArray(), device: x.device);
                var s = sigma.reshape(-1, 1, 1, 1).to_type(ScalarType.Float32);
                var xt = x / s.square().Plus(HeldScalars.One).sqrt();
                var eps = Call(model, xt.to_type(computeType), t.to_type(computeType), labels).to_type(ScalarType.Float32)[.., ..channels];
                return x.Minus(s * eps).MoveToOuterDisposeScope();
            };
        }
        var edm = new EdmPreconditioning(sigmaData);
        return (x, sigma, labels) =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var s = sigma.reshape(-1, 1, 1, 1);
            var f = Call(model, (edm.CIn(s) * x).to_type(computeType), edm.CNoise(sigma).to_type(computeType), labels);
            var d = (edm.CSkip(s) * x).Plus(edm.COut(s) * f.to_type(ScalarType.Float32)[.., ..channels]);
            return d.MoveToOuterDisposeScope();
        };
    }

    /// <summary>The network as DiT's DDPM sampler calls it (x_t, training timestep, labels), in its own precision, without gradients.</summary>
    /// <exception cref="ArgumentException">The network is not a DDPM ε-network (<see cref="DiffusionFormulation.VpEpsilon"/>).</exception>
    public static DdpmNetwork CreateDdpm(MaskedDiffusionTransformer model)
    {
        if (model.Config.Formulation != DiffusionFormulation.VpEpsilon)
            throw new ArgumentException("The DDPM sampler needs a network that predicts DDPM noise (DiT's weights, Formulation VpEpsilon); this one is EDM-preconditioned: use Heun or Euler.", nameof(model));
        var computeType = model.parameters().First().dtype;
        return (x, t, labels) =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return Call(model, x.to_type(computeType), t.to_type(computeType), labels).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
        };
    }

    // One network evaluation; on a CPU with 2+ threads the batch's two halves (with guidance: the conditional and the
    // unconditional rows) run at the same time on two threads (see BatchHalves). Rows do not interact in the network.
    static Tensor Call(MaskedDiffusionTransformer model, Tensor x, Tensor noise, Tensor? labels)
    {
        if (BatchHalves.For(x.device, x.shape[0]) is not { } halves) return model.call(x, noise, labels);
        return halves.MapRows((int)x.shape[0], (start, count) =>
            model.call(x.narrow(0, start, count), noise.narrow(0, start, count), labels?.narrow(0, start, count)));
    }
}
