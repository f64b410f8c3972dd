using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// Embeds a real-valued noise input (EDM: c_noise = ln σ / 4) as 256 sinusoidal features [cos, sin] with max
/// period 10000, then Linear–SiLU–Linear (parameters <c>mlp.0</c>, <c>mlp.2</c>).
/// </summary>
public sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Sequential mlp;

    /// <summary>Number of sinusoidal features.</summary>
    public int FrequencyEmbeddingSize { get; }

    /// <summary>Creates the embedder; both linears are drawn from N(0, 0.02²) with zero bias, as in DiT.</summary>
    public TimestepEmbedder(int hiddenSize, int frequencyEmbeddingSize = 256) : base(nameof(TimestepEmbedder))
    {
        FrequencyEmbeddingSize = frequencyEmbeddingSize;
        var fc0 = nn.Linear(frequencyEmbeddingSize, hiddenSize, hasBias: true);
        var fc2 = nn.Linear(hiddenSize, hiddenSize, hasBias: true);
        mlp = nn.Sequential(fc0, nn.SiLU(), fc2);
        RegisterComponents();
        foreach (var fc in new[] { fc0, fc2 })
        {
            Init.Normal(fc.weight!, 0.02);
            using var _ = no_grad();
            fc.bias!.zero_();
        }
    }

    /// <summary>Sinusoidal features of t [N] → [N, dim].</summary>
    public static Tensor TimestepFeatures(Tensor t, int dim, double maxPeriod = 10000)
    {
        using var scope = NewDisposeScope();
        int half = dim / 2;
        var freqs = exp(arange(0, half, dtype: ScalarType.Float32, device: t.device).mul(-Math.Log(maxPeriod) / half));
        var args = t.to_type(ScalarType.Float32).unsqueeze(1).mul(freqs.unsqueeze(0));
        var embedding = cat(new[] { cos(args), sin(args) }, -1);
        if (dim % 2 == 1) embedding = cat(new[] { embedding, zeros_like(embedding[.., ..1]) }, -1);
        return embedding.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor t)
    {
        using var scope = NewDisposeScope();
        var features = TimestepFeatures(t, FrequencyEmbeddingSize);
        var weight = ((Linear)mlp[0]).weight!;
        if (features.dtype != weight.dtype) features = features.to_type(weight.dtype);
        return mlp.call(features).MoveToOuterDisposeScope();
    }
}
