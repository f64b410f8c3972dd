using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace McDit.Torch.Modules;

/// <summary>
/// A table of C + 1 class embeddings (parameter <c>embedding_table</c>); row C is the null label used for
/// classifier-free guidance. Label dropout is applied by the training objective, which owns the randomness.
/// </summary>
public sealed class LabelEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embedding_table;

    /// <summary>Number of real classes C.</summary>
    public int NumClasses { get; }

    /// <summary>The null label's index (C).</summary>
    public int NullLabel => NumClasses;

    /// <summary>Creates the table, drawn from N(0, 0.02²) as in DiT.</summary>
    public LabelEmbedder(int numClasses, int hiddenSize) : base(nameof(LabelEmbedder))
    {
        NumClasses = numClasses;
        embedding_table = nn.Embedding(numClasses + 1, hiddenSize);
        RegisterComponents();
        Init.Normal(embedding_table.weight!, 0.02);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor labels) => embedding_table.call(labels);
}
