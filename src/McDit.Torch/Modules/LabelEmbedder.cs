using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// A table of C + 1 class embeddings (parameter <c>embedding_table</c>); row C is the null label used for
/// classifier-free guidance. Label dropout is applied by the training objective, which owns the randomness. Models
/// imported from DiT runs without label dropout have C rows and no null label.
/// </summary>
public sealed class LabelEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embedding_table;

    /// <summary>Number of real classes C.</summary>
    public int NumClasses { get; }

    /// <summary>True when row C is the null label.</summary>
    public bool HasNullLabel { get; }

    /// <summary>The null label's index (C), or −1 when the table has none.</summary>
    public int NullLabel => HasNullLabel ? NumClasses : -1;

    /// <summary>Creates the table, drawn from N(0, 0.02²) as in DiT.</summary>
    public LabelEmbedder(int numClasses, int hiddenSize, bool hasNullLabel = true) : base(nameof(LabelEmbedder))
    {
        NumClasses = numClasses;
        HasNullLabel = hasNullLabel;
        embedding_table = nn.Embedding(numClasses + (hasNullLabel ? 1 : 0), hiddenSize);
        RegisterComponents();
        Init.Normal(embedding_table.weight!, 0.02);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor labels) => embedding_table.call(labels);
}
