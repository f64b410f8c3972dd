using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

// Field names are the PyTorch parameter names of torchvision's Inception3 / pytorch-fid's FID blocks.
#pragma warning disable IDE1006

namespace McDit.Torch.Metrics;

/// <summary>Conv (no bias) → BatchNorm (ε = 0.001) → ReLU; parameters <c>conv</c> and <c>bn</c>.</summary>
internal sealed class BasicConv2d : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly BatchNorm2d bn;

    public BasicConv2d(long inChannels, long outChannels, (long, long) kernel, (long, long)? stride = null,
        (long, long)? padding = null) : base(nameof(BasicConv2d))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernel, stride ?? (1, 1), padding ?? (0, 0), bias: false);
        bn = nn.BatchNorm2d(outChannels, eps: 0.001);
        RegisterComponents();
    }

    public BasicConv2d(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding)) { }

    public override Tensor forward(Tensor x) => F.relu(bn.call(conv.call(x)));
}

/// <summary>Mixed_5b/5c/5d (FIDInceptionA: average pooling excludes the padding).</summary>
internal sealed class InceptionA : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool;

    public InceptionA(long inChannels, long poolFeatures) : base(nameof(InceptionA))
    {
        branch1x1 = new BasicConv2d(inChannels, 64, 1);
        branch5x5_1 = new BasicConv2d(inChannels, 48, 1);
        branch5x5_2 = new BasicConv2d(48, 64, 5, padding: 2);
        branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
        branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
        branch3x3dbl_3 = new BasicConv2d(96, 96, 3, padding: 1);
        branch_pool = new BasicConv2d(inChannels, poolFeatures, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(x);
        var b5 = branch5x5_2.call(branch5x5_1.call(x));
        var b3 = branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x)));
        var bp = branch_pool.call(F.avg_pool2d(x, 3, stride: 1, padding: 1, count_include_pad: false));
        return cat(new[] { b1, b5, b3, bp }, 1).MoveToOuterDisposeScope();
    }
}

/// <summary>Mixed_6a (grid reduction 35 → 17).</summary>
internal sealed class InceptionB : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;

    public InceptionB(long inChannels) : base(nameof(InceptionB))
    {
        branch3x3 = new BasicConv2d(inChannels, 384, 3, stride: 2);
        branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
        branch3x3dbl_2 = new BasicConv2d(64, 96, 3, padding: 1);
        branch3x3dbl_3 = new BasicConv2d(96, 96, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3.call(x);
        var bd = branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(x)));
        var bp = F.max_pool2d(x, 3, stride: 2);
        return cat(new[] { b3, bd, bp }, 1).MoveToOuterDisposeScope();
    }
}

/// <summary>Mixed_6b–6e (FIDInceptionC: factorised 7×7, average pooling excludes the padding).</summary>
internal sealed class InceptionC : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch1x1, branch7x7_1, branch7x7_2, branch7x7_3,
        branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;

    public InceptionC(long inChannels, long c7) : base(nameof(InceptionC))
    {
        branch1x1 = new BasicConv2d(inChannels, 192, 1);
        branch7x7_1 = new BasicConv2d(inChannels, c7, 1);
        branch7x7_2 = new BasicConv2d(c7, c7, (1, 7), padding: (0, 3));
        branch7x7_3 = new BasicConv2d(c7, 192, (7, 1), padding: (3, 0));
        branch7x7dbl_1 = new BasicConv2d(inChannels, c7, 1);
        branch7x7dbl_2 = new BasicConv2d(c7, c7, (7, 1), padding: (3, 0));
        branch7x7dbl_3 = new BasicConv2d(c7, c7, (1, 7), padding: (0, 3));
        branch7x7dbl_4 = new BasicConv2d(c7, c7, (7, 1), padding: (3, 0));
        branch7x7dbl_5 = new BasicConv2d(c7, 192, (1, 7), padding: (0, 3));
        branch_pool = new BasicConv2d(inChannels, 192, 1);
        RegisterComponents();
    }

    /// <summary>The output of <c>branch1x1</c> alone (TensorFlow's <c>mixed_N/conv</c>), for sFID.</summary>
    public Tensor Branch1x1(Tensor x) => branch1x1.call(x);

    public override Tensor forward(Tensor x) => Forward(x, branch1x1.call(x));

    /// <summary>The block's output given an already computed <see cref="Branch1x1"/>.</summary>
    public Tensor Forward(Tensor x, Tensor b1)
    {
        using var scope = NewDisposeScope();
        var b7 = branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(x)));
        var bd = branch7x7dbl_5.call(branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(branch7x7dbl_1.call(x)))));
        var bp = branch_pool.call(F.avg_pool2d(x, 3, stride: 1, padding: 1, count_include_pad: false));
        return cat(new[] { b1, b7, bd, bp }, 1).MoveToOuterDisposeScope();
    }
}

/// <summary>Mixed_7a (grid reduction 17 → 8).</summary>
internal sealed class InceptionD : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;

    public InceptionD(long inChannels) : base(nameof(InceptionD))
    {
        branch3x3_1 = new BasicConv2d(inChannels, 192, 1);
        branch3x3_2 = new BasicConv2d(192, 320, 3, stride: 2);
        branch7x7x3_1 = new BasicConv2d(inChannels, 192, 1);
        branch7x7x3_2 = new BasicConv2d(192, 192, (1, 7), padding: (0, 3));
        branch7x7x3_3 = new BasicConv2d(192, 192, (7, 1), padding: (3, 0));
        branch7x7x3_4 = new BasicConv2d(192, 192, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3_2.call(branch3x3_1.call(x));
        var b7 = branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(x))));
        var bp = F.max_pool2d(x, 3, stride: 2);
        return cat(new[] { b3, b7, bp }, 1).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Mixed_7b / 7c (FIDInceptionE_1 / _2): the pool branch is a padding-excluding average pool in 7b and a 3×3
/// max pool (stride 1) in 7c, as in the TensorFlow graph the FID weights come from.
/// </summary>
internal sealed class InceptionE : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b,
        branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;
    private readonly bool _maxPool;

    public InceptionE(long inChannels, bool maxPool) : base(nameof(InceptionE))
    {
        _maxPool = maxPool;
        branch1x1 = new BasicConv2d(inChannels, 320, 1);
        branch3x3_1 = new BasicConv2d(inChannels, 384, 1);
        branch3x3_2a = new BasicConv2d(384, 384, (1, 3), padding: (0, 1));
        branch3x3_2b = new BasicConv2d(384, 384, (3, 1), padding: (1, 0));
        branch3x3dbl_1 = new BasicConv2d(inChannels, 448, 1);
        branch3x3dbl_2 = new BasicConv2d(448, 384, 3, padding: 1);
        branch3x3dbl_3a = new BasicConv2d(384, 384, (1, 3), padding: (0, 1));
        branch3x3dbl_3b = new BasicConv2d(384, 384, (3, 1), padding: (1, 0));
        branch_pool = new BasicConv2d(inChannels, 192, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(x);
        var t = branch3x3_1.call(x);
        var b3 = cat(new[] { branch3x3_2a.call(t), branch3x3_2b.call(t) }, 1);
        var d = branch3x3dbl_2.call(branch3x3dbl_1.call(x));
        var bd = cat(new[] { branch3x3dbl_3a.call(d), branch3x3dbl_3b.call(d) }, 1);
        var pooled = _maxPool
            ? F.max_pool2d(x, 3, stride: 1, padding: 1)
            : F.avg_pool2d(x, 3, stride: 1, padding: 1, count_include_pad: false);
        var bp = branch_pool.call(pooled);
        return cat(new[] { b1, b3, bd, bp }, 1).MoveToOuterDisposeScope();
    }
}
