using System.Text.Json;
using System.Text.Json.Serialization;

namespace McDit.Torch.Vae;

/// <summary>
/// Shape of an <see cref="AutoencoderKL"/>, with the field names of diffusers' <c>config.json</c> for
/// <c>AutoencoderKL</c>, so the config of sd-vae-ft-mse / sd-vae-ft-ema (or of a Stable Diffusion pipeline's
/// <c>vae/</c> folder) reads as it is. Fields this implementation does not model are ignored when they hold
/// their defaults and rejected otherwise.
/// </summary>
public sealed record AutoencoderKLConfig
{
    /// <summary>diffusers' block type of every encoder level (the only one supported).</summary>
    public const string DownEncoderBlock = "DownEncoderBlock2D";
    /// <summary>diffusers' block type of every decoder level (the only one supported).</summary>
    public const string UpDecoderBlock = "UpDecoderBlock2D";
    /// <summary>The Stable Diffusion scaling of latents (σ of the SD VAE latents ≈ 1 / 0.18215).</summary>
    public const double StableDiffusionScalingFactor = 0.18215;

    /// <summary>Image channels the encoder takes (3 for RGB).</summary>
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    /// <summary>Image channels the decoder produces (3 for RGB).</summary>
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    /// <summary>Encoder block types, one per level; only <see cref="DownEncoderBlock"/>. Null: as many as <see cref="BlockOutChannels"/>.</summary>
    [JsonPropertyName("down_block_types")] public IReadOnlyList<string>? DownBlockTypes { get; init; }
    /// <summary>Decoder block types, one per level; only <see cref="UpDecoderBlock"/>. Null: as many as <see cref="BlockOutChannels"/>.</summary>
    [JsonPropertyName("up_block_types")] public IReadOnlyList<string>? UpBlockTypes { get; init; }
    /// <summary>Channels per level, from the image side; each level but the last halves height and width.</summary>
    [JsonPropertyName("block_out_channels")] public IReadOnlyList<int> BlockOutChannels { get; init; } = new[] { 64 };
    /// <summary>ResNet blocks per encoder level (the decoder has one more per level).</summary>
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 1;
    /// <summary>Activation; only <c>silu</c>.</summary>
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    /// <summary>Latent channels (4 for the SD VAE); the encoder outputs twice as many (mean and log-variance).</summary>
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;
    /// <summary>Groups of every GroupNorm.</summary>
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    /// <summary>The image size the VAE was trained at (informational; any size divisible by the downsampling works).</summary>
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 32;
    /// <summary>Latents are multiplied by this for the diffusion model (<see cref="AutoencoderKL.EncodeLatents"/>).</summary>
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = StableDiffusionScalingFactor;
    /// <summary>Subtracted from latents before scaling (SD3/FLUX VAEs); null or absent for the SD VAE.</summary>
    [JsonPropertyName("shift_factor")] public double? ShiftFactor { get; init; }
    /// <summary>Whether the 1×1 <c>quant_conv</c> follows the encoder (true for the SD VAE).</summary>
    [JsonPropertyName("use_quant_conv")] public bool UseQuantConv { get; init; } = true;
    /// <summary>Whether the 1×1 <c>post_quant_conv</c> precedes the decoder (true for the SD VAE).</summary>
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; } = true;
    /// <summary>Whether the mid blocks have their self-attention (true for the SD VAE).</summary>
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;

    /// <summary>Height and width of the image per latent cell: 2^(levels − 1), 8 for the SD VAE.</summary>
    [JsonIgnore] public int DownsamplingFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>
    /// The KL-f8 VAE of Stable Diffusion 1.x/2.x (stabilityai/sd-vae-ft-mse, sd-vae-ft-ema): blocks
    /// [128, 256, 512, 512], two ResNet blocks per level, 4 latent channels, GroupNorm(32), 256 px, scaling 0.18215.
    /// </summary>
    public static AutoencoderKLConfig StableDiffusion { get; } = new()
    {
        InChannels = 3,
        OutChannels = 3,
        DownBlockTypes = Enumerable.Repeat(DownEncoderBlock, 4).ToArray(),
        UpBlockTypes = Enumerable.Repeat(UpDecoderBlock, 4).ToArray(),
        BlockOutChannels = new[] { 128, 256, 512, 512 },
        LayersPerBlock = 2,
        LatentChannels = 4,
        NormNumGroups = 32,
        SampleSize = 256,
        ScalingFactor = StableDiffusionScalingFactor,
    };

    static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Reads diffusers' <c>config.json</c> text (unknown fields such as <c>_class_name</c> are ignored) and validates it.</summary>
    /// <param name="json">The JSON object.</param>
    /// <param name="source">Names the input in error messages (a path, for example).</param>
    /// <exception cref="InvalidDataException">The JSON is malformed or describes a VAE this implementation does not build.</exception>
    public static AutoencoderKLConfig FromJson(string json, string source = "config")
    {
        ArgumentNullException.ThrowIfNull(json);
        AutoencoderKLConfig? config;
        try { config = JsonSerializer.Deserialize<AutoencoderKLConfig>(json, JsonOptions); }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: expected a diffusers AutoencoderKL config (JSON object); {e.Message}", e);
        }
        if (config is null) throw new InvalidDataException($"{source}: expected a diffusers AutoencoderKL config (JSON object), found null.");
        return config.Validated(source);
    }

    /// <summary>Reads a diffusers <c>config.json</c> file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The JSON is malformed or describes an unsupported VAE.</exception>
    public static AutoencoderKLConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"VAE config '{path}' does not exist.", path);
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Writes the config as diffusers' <c>config.json</c> (with <c>_class_name</c> AutoencoderKL and the block types filled in).</summary>
    public string ToJson()
    {
        var levels = BlockOutChannels.Count;
        var node = JsonSerializer.SerializeToNode(this with
        {
            DownBlockTypes = DownBlockTypes ?? Enumerable.Repeat(DownEncoderBlock, levels).ToArray(),
            UpBlockTypes = UpBlockTypes ?? Enumerable.Repeat(UpDecoderBlock, levels).ToArray(),
        }, JsonOptions)!.AsObject();
        var result = new System.Text.Json.Nodes.JsonObject { ["_class_name"] = "AutoencoderKL" };
        foreach (var (k, v) in node.ToList())
        {
            node.Remove(k);
            result[k] = v;
        }
        return result.ToJsonString(JsonOptions);
    }

    /// <summary>
    /// A lower bound on the VAE's parameter count, from its ResNet convolutions alone (one 3×3 c→c convolution per
    /// ResNet block: <c>layers_per_block</c> per level in the encoder, one more in the decoder); the true count is about
    /// three times as large for the SD VAE. Loaders compare it with the weights' size before building the VAE, so a
    /// damaged config cannot allocate far beyond its file. Saturates at <see cref="long.MaxValue"/>.
    /// </summary>
    public long MinimumParameterCount()
    {
        try
        {
            checked
            {
                long n = 0;
                foreach (var c in BlockOutChannels ?? Array.Empty<int>()) n += 9L * c * c * (2L * LayersPerBlock + 1);
                return n;
            }
        }
        catch (OverflowException) { return long.MaxValue; }
    }

    /// <summary>
    /// Throws unless <paramref name="storedElements"/> (the elements a weights file holds) could be this VAE's weights,
    /// checked before building it (see <see cref="MinimumParameterCount"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">The weights are far smaller than the config implies.</exception>
    public void CheckWeightsSize(long storedElements, string source)
    {
        long minimum = MinimumParameterCount();
        if (storedElements < minimum)
            throw new InvalidDataException(
                $"{source} holds {storedElements:N0} elements; its VAE config implies at least {minimum:N0}. The config or the weights are damaged.");
    }

    /// <summary>Checks that the config describes a VAE this implementation builds; returns it unchanged.</summary>
    /// <param name="source">Names the config in error messages.</param>
    /// <exception cref="InvalidDataException">A field is out of range or unsupported; the message names it and what was expected.</exception>
    public AutoencoderKLConfig Validated(string source = "config")
    {
        void Fail(string field, string message) => throw new InvalidDataException($"{source}: '{field}' {message}");
        if (InChannels < 1) Fail("in_channels", $"must be at least 1, found {InChannels}.");
        if (OutChannels < 1) Fail("out_channels", $"must be at least 1, found {OutChannels}.");
        if (LatentChannels < 1) Fail("latent_channels", $"must be at least 1, found {LatentChannels}.");
        if (LayersPerBlock < 1) Fail("layers_per_block", $"must be at least 1, found {LayersPerBlock}.");
        if (NormNumGroups < 1) Fail("norm_num_groups", $"must be at least 1, found {NormNumGroups}.");
        if (InChannels > 64 || OutChannels > 64 || LatentChannels > 64) Fail("in_channels", $"in/out/latent channels must be at most 64, found {InChannels}/{OutChannels}/{LatentChannels}.");
        if (LayersPerBlock > 16) Fail("layers_per_block", $"must be at most 16, found {LayersPerBlock}.");
        if (BlockOutChannels is null || BlockOutChannels.Count == 0) Fail("block_out_channels", "must list at least one level.");
        if (BlockOutChannels!.Count > 8) Fail("block_out_channels", $"must list at most 8 levels, found {BlockOutChannels.Count}.");
        foreach (var c in BlockOutChannels!)
            if (c < 1 || c > 8192 || c % NormNumGroups != 0)
                Fail("block_out_channels", $"must hold positive multiples of norm_num_groups ({NormNumGroups}), found {c}.");
        if (!string.Equals(ActFn, "silu", StringComparison.OrdinalIgnoreCase) && !string.Equals(ActFn, "swish", StringComparison.OrdinalIgnoreCase))
            Fail("act_fn", $"must be 'silu' (the SD VAE's activation), found '{ActFn}'.");
        if (!(ScalingFactor > 0) || double.IsInfinity(ScalingFactor)) Fail("scaling_factor", $"must be a positive number, found {ScalingFactor}.");
        CheckTypes("down_block_types", DownBlockTypes, DownEncoderBlock);
        CheckTypes("up_block_types", UpBlockTypes, UpDecoderBlock);
        return this;

        void CheckTypes(string field, IReadOnlyList<string>? types, string expected)
        {
            if (types is null) return;
            if (types.Count != BlockOutChannels.Count)
                Fail(field, $"must have one entry per block_out_channels level ({BlockOutChannels.Count}), found {types.Count}.");
            foreach (var t in types)
                if (t != expected) Fail(field, $"must hold only '{expected}', found '{t}'.");
        }
    }
}
