using McDit.Torch.IO;
using McDit.Torch.Runtime;
using McDit.Torch.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.MLNet.Latents;

/// <summary>
/// What the ML.NET components do with an <see cref="AutoencoderKL"/>: weights to and from bytes inside a model zip
/// (safetensors with the config JSON in the metadata), and batched encoding / decoding on float arrays.
/// All calls on one VAE go through a lock held on the VAE object.
/// </summary>
static class VaeRuntime
{
    /// <summary>The VAE's weights as safetensors bytes, its config JSON under the metadata key <c>config</c>.</summary>
    public static byte[] ToBytes(AutoencoderKL vae)
    {
        lock (vae)
        {
            using var scope = NewDisposeScope();
            return SafeTensors.ToBytes(vae.state_dict(),
                new Dictionary<string, string> { [AutoencoderKL.ConfigMetadataKey] = vae.Config.ToJson() });
        }
    }

    /// <summary>A VAE from <see cref="ToBytes"/>, in eval mode, on the CPU.</summary>
    public static AutoencoderKL FromBytes(byte[] bytes, string source)
    {
        TorchBackend.EnsureInitialized();
        using var content = SafeTensors.Load(bytes, source);
        if (!content.Metadata.TryGetValue(AutoencoderKL.ConfigMetadataKey, out var json))
            throw new InvalidDataException($"{source}: the VAE weights carry no '{AutoencoderKL.ConfigMetadataKey}' metadata entry (the AutoencoderKL config).");
        var config = AutoencoderKLConfig.FromJson(json, source);
        config.CheckWeightsSize(content.Tensors.Values.Sum(t => t.numel()), source);
        var vae = new AutoencoderKL(config);
        try
        {
            vae.LoadWeights(content.Tensors, source);
            vae.eval();
            return vae;
        }
        catch
        {
            vae.Dispose();
            throw;
        }
    }

    /// <summary>Loads a diffusers folder or a .safetensors file (see <see cref="AutoencoderKL.Load"/>) on the CPU.</summary>
    public static AutoencoderKL Load(string folderOrFile)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folderOrFile);
        TorchBackend.EnsureInitialized();
        return AutoencoderKL.Load(folderOrFile);
    }

    static Device DeviceOf(AutoencoderKL vae) => vae.parameters().First().device;

    /// <summary>
    /// The posterior of <paramref name="n"/> images given as N·C·H·W floats already in [−1, 1]: the unscaled mean and
    /// log-variance, each N·latent·(H/f)·(W/f) floats.
    /// </summary>
    public static (float[] Mean, float[] LogVar) EncodeMoments(AutoencoderKL vae, ReadOnlySpan<float> images, int n, int channels, int height, int width)
    {
        var data = images.Slice(0, n * channels * height * width).ToArray();
        lock (vae)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var x = torch.tensor(data, new long[] { n, channels, height, width }).to(DeviceOf(vae));
            var (mean, logVar) = vae.Encode(x);
            return (mean.cpu().contiguous().data<float>().ToArray(), logVar.cpu().contiguous().data<float>().ToArray());
        }
    }

    /// <summary>The latent a diffusion model sees: (z − shift)·scaling.</summary>
    public static float ToModelLatent(AutoencoderKLConfig config, float z)
        => (float)((z - (config.ShiftFactor ?? 0.0)) * config.ScalingFactor);

    /// <summary>
    /// Images from diffusion-model latents (N·latent·h·w floats, scaled as <see cref="AutoencoderKL.EncodeLatents"/>
    /// makes them): N·C_out·(h·f)·(w·f) floats clamped to [−1, 1].
    /// </summary>
    public static float[] DecodeLatents(AutoencoderKL vae, ReadOnlySpan<float> latents, int n, int height, int width)
    {
        int c = vae.Config.LatentChannels;
        var data = latents.Slice(0, n * c * height * width).ToArray();
        lock (vae)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var z = torch.tensor(data, new long[] { n, c, height, width }).to(DeviceOf(vae));
            return vae.DecodeLatents(z).clamp(-1f, 1f).cpu().contiguous().data<float>().ToArray();
        }
    }
}
