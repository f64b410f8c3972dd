using System.Globalization;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Vae;

/// <summary>
/// The KL-regularised autoencoder of latent diffusion (diffusers' <c>AutoencoderKL</c>), as used by Stable Diffusion
/// 1.x/2.x and by DiT / MaskDiT for 256 px ImageNet latents (stabilityai/sd-vae-ft-mse, sd-vae-ft-ema). Parameter
/// names are diffusers' (<c>encoder.*</c>, <c>decoder.*</c>, <c>quant_conv</c>, <c>post_quant_conv</c>), so a
/// <c>diffusion_pytorch_model.safetensors</c> from those repositories loads as it is (<see cref="Load"/>).
/// </summary>
/// <remarks>
/// Images are NCHW in [−1, 1] with height and width divisible by <see cref="AutoencoderKLConfig.DownsamplingFactor"/>.
/// <see cref="Encode"/> gives the diagonal Gaussian posterior (mean, log-variance); <see cref="Sample"/> draws from it;
/// <see cref="Decode"/> maps latents back to images. <see cref="EncodeLatents"/> / <see cref="DecodeLatents"/> add the
/// scaling by <see cref="AutoencoderKLConfig.ScalingFactor"/> (0.18215) that diffusion models see. Nothing here
/// switches off gradients: wrap calls in <c>torch.no_grad()</c> and call <c>eval()</c> for inference.
/// </remarks>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    /// <summary>The weights file name of a diffusers model folder.</summary>
    public const string WeightsFileName = "diffusion_pytorch_model.safetensors";
    /// <summary>The config file name of a diffusers model folder.</summary>
    public const string ConfigFileName = "config.json";
    /// <summary>The safetensors metadata key that may hold the config JSON of a single weights file.</summary>
    public const string ConfigMetadataKey = "config";

    private readonly VaeEncoder encoder;
    private readonly VaeDecoder decoder;
    private readonly Conv2d? quant_conv;
    private readonly Conv2d? post_quant_conv;

    /// <summary>The shape of this VAE.</summary>
    public AutoencoderKLConfig Config { get; }

    /// <summary>
    /// Creates a VAE with PyTorch's default initialisation (seed the global generator with <c>torch.manual_seed</c>
    /// for reproducible random weights); load trained weights with <see cref="LoadWeights"/> or use <see cref="Load"/>.
    /// </summary>
    public AutoencoderKL(AutoencoderKLConfig config) : base(TorchBackend.Loaded(nameof(AutoencoderKL)))
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config.Validated();
        encoder = new VaeEncoder(config);
        decoder = new VaeDecoder(config);
        int latent = config.LatentChannels;
        if (config.UseQuantConv) quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1);
        if (config.UsePostQuantConv) post_quant_conv = nn.Conv2d(latent, latent, 1);
        RegisterComponents();
    }

    /// <summary>Number of parameters (83,653,863 for <see cref="AutoencoderKLConfig.StableDiffusion"/>).</summary>
    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>
    /// The posterior q(z | x): images [N, C_in, H, W] in [−1, 1] → mean and log-variance, each
    /// [N, latent, H/f, W/f]; the log-variance is clamped to [−30, 20] as diffusers does.
    /// </summary>
    public (Tensor Mean, Tensor LogVar) Encode(Tensor x)
    {
        CheckImages(x, Config.InChannels, "x");
        using var scope = NewDisposeScope();
        var moments = encoder.call(x);
        if (quant_conv is not null) moments = quant_conv.call(moments);
        var parts = moments.chunk(2, 1);
        var logvar = parts[1].clamp(-30.0, 20.0);
        return (parts[0].MoveToOuterDisposeScope(), logvar.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Draws z = mean + exp(logvar / 2)·ε with ε ~ N(0, I) from <paramref name="generator"/> (a CPU generator; the
    /// noise is drawn on the CPU and moved to the device of <paramref name="mean"/>, so results do not depend on the device).
    /// </summary>
    public static Tensor Sample(Tensor mean, Tensor logVar, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(logVar);
        ArgumentNullException.ThrowIfNull(generator);
        if (!mean.shape.SequenceEqual(logVar.shape))
            throw new ArgumentException(
                $"logVar has shape [{string.Join(", ", logVar.shape)}]; expected the shape of mean, [{string.Join(", ", mean.shape)}].", nameof(logVar));
        using var scope = NewDisposeScope();
        var eps = torch.randn(mean.shape, dtype: mean.dtype, device: torch.CPU, generator: generator).to(mean.device);
        return (mean + (0.5 * logVar).exp() * eps).MoveToOuterDisposeScope();
    }

    /// <summary>Latents [N, latent, h, w] (unscaled) → images [N, C_out, h·f, w·f], roughly in [−1, 1] (not clamped).</summary>
    public Tensor Decode(Tensor z)
    {
        CheckImages(z, Config.LatentChannels, "z");
        using var scope = NewDisposeScope();
        var h = post_quant_conv is null ? z : post_quant_conv.call(z);
        return decoder.call(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Latents for a diffusion model: (z − shift)·scaling_factor with z drawn from the posterior with
    /// <paramref name="generator"/>, or z = the posterior mean when <paramref name="generator"/> is null.
    /// </summary>
    public Tensor EncodeLatents(Tensor x, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var (mean, logVar) = Encode(x);
        var z = generator is null ? mean : Sample(mean, logVar, generator);
        if (Config.ShiftFactor is { } shift) z = z - shift;
        return (z * Config.ScalingFactor).MoveToOuterDisposeScope();
    }

    /// <summary>Images from diffusion-model latents: <see cref="Decode"/>(z / scaling_factor + shift).</summary>
    public Tensor DecodeLatents(Tensor latents)
    {
        using var scope = NewDisposeScope();
        var z = latents / Config.ScalingFactor;
        if (Config.ShiftFactor is { } shift) z = z + shift;
        return Decode(z).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction as diffusers' <c>forward</c> with <c>sample_posterior=False</c>: Decode(Encode(x).Mean).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (mean, _) = Encode(x);
        return Decode(mean).MoveToOuterDisposeScope();
    }

    // ---------------------------------------------------------------- weights

    /// <summary>
    /// Loads a VAE saved by diffusers: a folder with <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>
    /// (such as a download of stabilityai/sd-vae-ft-mse or a pipeline's <c>vae/</c> folder), or a single
    /// <c>.safetensors</c> file whose config comes from <paramref name="config"/>, its metadata entry <c>config</c>,
    /// or a <c>config.json</c> beside it (in that order). Returns the model in eval mode, in float32.
    /// </summary>
    /// <param name="folderOrFile">The model folder or weights file.</param>
    /// <param name="config">The config to use instead of the one stored with the weights, or null.</param>
    /// <param name="device">Where to put the model; null keeps it on the CPU.</param>
    /// <exception cref="FileNotFoundException">The folder, file or config is missing.</exception>
    /// <exception cref="InvalidDataException">The config is invalid, or the weights do not match it (the message names the file and each tensor).</exception>
    public static AutoencoderKL Load(string folderOrFile, AutoencoderKLConfig? config = null, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folderOrFile);
        string weightsPath;
        string? configPath;
        if (Directory.Exists(folderOrFile))
        {
            weightsPath = Path.Combine(folderOrFile, WeightsFileName);
            if (!File.Exists(weightsPath))
                throw new FileNotFoundException(
                    $"VAE folder '{folderOrFile}' has no {WeightsFileName} (only diffusers' safetensors weights are read, not .bin).", weightsPath);
            configPath = Path.Combine(folderOrFile, ConfigFileName);
        }
        else if (File.Exists(folderOrFile))
        {
            weightsPath = folderOrFile;
            configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(folderOrFile))!, ConfigFileName);
        }
        else
        {
            throw new FileNotFoundException($"VAE '{folderOrFile}' is neither a folder nor a file.", folderOrFile);
        }

        using var content = SafeTensors.Load(weightsPath);
        if (config is null)
        {
            if (content.Metadata.TryGetValue(ConfigMetadataKey, out var json)) config = AutoencoderKLConfig.FromJson(json, $"{weightsPath} (metadata '{ConfigMetadataKey}')");
            else if (File.Exists(configPath)) config = AutoencoderKLConfig.Load(configPath);
            else
                throw new FileNotFoundException(
                    $"No config for VAE weights '{weightsPath}': expected {configPath} or a '{ConfigMetadataKey}' metadata entry; or pass the config " +
                    $"(e.g. {nameof(AutoencoderKLConfig)}.{nameof(AutoencoderKLConfig.StableDiffusion)}).", configPath);
        }

        config.Validated(weightsPath).CheckWeightsSize(content.Tensors.Values.Sum(t => t.numel()), weightsPath);
        var model = new AutoencoderKL(config);
        try
        {
            model.LoadWeights(content.Tensors, weightsPath);
            if (device is not null) model.to(device);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies weights given by diffusers' names into this model, converting their dtype. Also accepts the older
    /// diffusers attention names (<c>query</c>, <c>key</c>, <c>value</c>, <c>proj_attn</c>, as in VAEs uploaded before
    /// diffusers 0.14) and 1×1-convolution-shaped attention projections. Entries whose names start with one of
    /// <paramref name="ignorePrefixes"/> are skipped (e.g. recorded inputs and outputs in a test fixture).
    /// </summary>
    /// <param name="tensors">The weights by name.</param>
    /// <param name="source">Names the weights in error messages, such as the file path.</param>
    /// <param name="ignorePrefixes">Name prefixes to skip, or null.</param>
    /// <exception cref="InvalidDataException">
    /// Tensors are missing, unexpected or of the wrong shape; the message names the source and each tensor with the
    /// expected and the found shape. Nothing is copied in that case.
    /// </exception>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> tensors, string source, IEnumerable<string>? ignorePrefixes = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var ignored = ignorePrefixes?.ToArray() ?? Array.Empty<string>();
        var expected = state_dict();
        var found = new Dictionary<string, (string Stored, Tensor Tensor)>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        foreach (var (stored, tensor) in tensors)
        {
            if (ignored.Any(p => stored.StartsWith(p, StringComparison.Ordinal))) continue;
            var name = CurrentName(stored);
            if (expected.ContainsKey(name)) found[name] = (stored, tensor);
            else unexpected.Add($"'{stored}' {Shape(tensor.shape)}");
        }

        var missing = new List<string>();
        var wrongShape = new List<string>();
        foreach (var (name, target) in expected)
        {
            if (!found.TryGetValue(name, out var entry)) { missing.Add($"'{name}' (expected {Shape(target.shape)})"); continue; }
            if (!ShapeFits(entry.Tensor.shape, target.shape))
                wrongShape.Add($"'{entry.Stored}': expected {Shape(target.shape)}, found {Shape(entry.Tensor.shape)}");
        }
        if (missing.Count + wrongShape.Count + unexpected.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count} tensor(s): {List(missing)}");
            if (wrongShape.Count > 0) parts.Add($"wrong shape in {wrongShape.Count} tensor(s): {List(wrongShape)}");
            if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected tensor(s): {List(unexpected)}");
            throw new InvalidDataException(
                $"{source}: the weights do not match the AutoencoderKL of this config " +
                $"(block_out_channels [{string.Join(", ", Config.BlockOutChannels)}], layers_per_block {Config.LayersPerBlock}, " +
                $"latent_channels {Config.LatentChannels}): {string.Join("; ", parts)}.");
        }

        using var noGrad = no_grad();
        foreach (var (name, target) in expected)
        {
            var value = found[name].Tensor;
            // Half-precision diffusers weights convert to float32; integer or non-finite ones are damage, not weights.
            if (!value.is_floating_point())
                throw new InvalidDataException($"{source}: tensor '{found[name].Stored}' is {value.dtype}; VAE weights are floating point.");
            McDit.Torch.IO.TensorChecks.CheckFinite(value, found[name].Stored, source);
            if (!value.shape.SequenceEqual(target.shape))
            {
                using var reshaped = value.reshape(target.shape);
                target.copy_(reshaped);
            }
            else target.copy_(value);
        }
    }

    /// <summary>
    /// Saves the model as a diffusers folder: <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>
    /// (float32, diffusers' names), which <see cref="Load"/> and diffusers' <c>AutoencoderKL.from_pretrained</c> read.
    /// </summary>
    public void Save(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Directory.CreateDirectory(folder);
        SafeTensors.Save(Path.Combine(folder, WeightsFileName), state_dict());
        AtomicFile.WriteAllText(Path.Combine(folder, ConfigFileName), Config.ToJson());
    }

    static readonly (string Old, string New)[] LegacyAttentionNames =
    {
        (".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0."),
    };

    /// <summary>Maps the pre-0.14 diffusers attention names of mid-block attentions to the current ones.</summary>
    static string CurrentName(string name)
    {
        if (!name.Contains(".mid_block.attentions.", StringComparison.Ordinal)) return name;
        foreach (var (old, current) in LegacyAttentionNames)
            if (name.Contains(old, StringComparison.Ordinal)) return name.Replace(old, current, StringComparison.Ordinal);
        return name;
    }

    /// <summary>Equal shapes, or a [C, C, 1, 1] convolution weight for a [C, C] linear weight.</summary>
    static bool ShapeFits(long[] found, long[] expected) =>
        found.SequenceEqual(expected) ||
        (expected.Length == 2 && found.Length == 4 && found[2] == 1 && found[3] == 1 && found[0] == expected[0] && found[1] == expected[1]);

    static string Shape(long[] shape) => "[" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    static string List(List<string> items) =>
        string.Join(", ", items.Take(10)) + (items.Count > 10 ? $", … ({items.Count - 10} more)" : "");

    void CheckImages(Tensor x, int channels, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.dim() != 4 || x.shape[1] != channels)
            throw new ArgumentException($"{name} has shape {Shape(x.shape)}; expected [N, {channels}, H, W].", name);
        if (name == "x")
        {
            int f = Config.DownsamplingFactor;
            if (x.shape[2] % f != 0 || x.shape[3] % f != 0)
                throw new ArgumentException($"x has shape {Shape(x.shape)}; height and width must be multiples of {f}.", name);
        }
    }
}
