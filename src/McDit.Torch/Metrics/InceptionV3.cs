using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

#pragma warning disable IDE1006 // field names are PyTorch parameter names

namespace McDit.Torch.Metrics;

/// <summary>What one Inception-v3 forward gives for a batch of N images. Owns its tensors.</summary>
/// <param name="Pool">pool_3 features [N, 2048] (FID, precision/recall).</param>
/// <param name="Spatial">
/// sFID features [N, 2023]: the first 7 channels of <c>Mixed_6d.branch1x1</c> (TensorFlow's <c>mixed_6/conv</c>,
/// after its batch norm and ReLU), 17×17 each, flattened in HWC order, as ADM's evaluator takes them.
/// </param>
/// <param name="Logits">Class logits [N, K] for the Inception Score: pool_3 · fcᵀ without the bias, as ADM's evaluator
/// (and torch-fidelity) compute them; K = 1008 for the FID weights.</param>
public sealed record InceptionV3Output(Tensor Pool, Tensor Spatial, Tensor Logits) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        Pool.Dispose();
        Spatial.Dispose();
        Logits.Dispose();
    }
}

/// <summary>
/// Inception-v3 as FID uses it: torchvision's Inception3 with pytorch-fid's FID blocks (average pools that exclude
/// padding; a max pool in Mixed_7c's pool branch), 1008 classes, no auxiliary head, always in eval mode. Parameter
/// names are PyTorch's (<c>Conv2d_1a_3x3.conv.weight</c>, <c>Mixed_5b.branch1x1.bn.running_mean</c>, <c>fc.weight</c>,
/// ...), so pytorch-fid's <c>pt_inception-2015-12-05-6726825d.pth</c> converted to safetensors loads as-is
/// (see docs/evaluation.md). Input: images [N, C, H, W] in [-1, 1], C = 1 or 3, any size: they are resized
/// bilinearly to 299×299 like pytorch-fid.
/// </summary>
public sealed class InceptionV3 : nn.Module<Tensor, Tensor>
{
    /// <summary>The file name of pytorch-fid's FID Inception weights.</summary>
    public const string WeightsFileName = "pt_inception-2015-12-05-6726825d.pth";

    /// <summary>Where the weights come from and how to convert them; used in error messages.</summary>
    public const string WeightsHelp =
        "McDit needs pytorch-fid's FID Inception weights, '" + WeightsFileName + "' (TensorFlow's 2015-12-05 Inception " +
        "graph converted to PyTorch; published as a release asset 'fid_weights' of the GitHub repository " +
        "mseitzer/pytorch-fid, and fetched by `pip install pytorch-fid` on first use), converted to safetensors with " +
        "the short Python snippet in docs/evaluation.md.";

    /// <summary>Input side after resizing.</summary>
    public const int InputSize = 299;

    /// <summary>pool_3 feature dimension.</summary>
    public const int PoolDimension = 2048;

    /// <summary>sFID feature dimension: 7 channels × 17 × 17.</summary>
    public const int SpatialDimension = 7 * 17 * 17;

    private readonly BasicConv2d Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3;
    private readonly InceptionA Mixed_5b, Mixed_5c, Mixed_5d;
    private readonly InceptionB Mixed_6a;
    private readonly InceptionC Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e;
    private readonly InceptionD Mixed_7a;
    private readonly InceptionE Mixed_7b, Mixed_7c;
    private readonly Linear fc;

    /// <summary>Creates the network with random weights (use <see cref="FromFile"/> for real ones).</summary>
    /// <param name="numClasses">Classifier outputs: 1008 for the FID weights, 1000 for torchvision's.</param>
    public InceptionV3(int numClasses = 1008) : base(TorchBackend.Loaded(nameof(InceptionV3)))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 1);
        NumClasses = numClasses;
        Conv2d_1a_3x3 = new BasicConv2d(3, 32, 3, stride: 2);
        Conv2d_2a_3x3 = new BasicConv2d(32, 32, 3);
        Conv2d_2b_3x3 = new BasicConv2d(32, 64, 3, padding: 1);
        Conv2d_3b_1x1 = new BasicConv2d(64, 80, 1);
        Conv2d_4a_3x3 = new BasicConv2d(80, 192, 3);
        Mixed_5b = new InceptionA(192, 32);
        Mixed_5c = new InceptionA(256, 64);
        Mixed_5d = new InceptionA(288, 64);
        Mixed_6a = new InceptionB(288);
        Mixed_6b = new InceptionC(768, 128);
        Mixed_6c = new InceptionC(768, 160);
        Mixed_6d = new InceptionC(768, 160);
        Mixed_6e = new InceptionC(768, 192);
        Mixed_7a = new InceptionD(768);
        Mixed_7b = new InceptionE(1280, maxPool: false);
        Mixed_7c = new InceptionE(2048, maxPool: true);
        fc = nn.Linear(2048, numClasses);
        RegisterComponents();
        eval();
    }

    /// <summary>Number of classifier outputs.</summary>
    public int NumClasses { get; }

    /// <summary>
    /// Loads the network from a safetensors file with PyTorch's parameter names (see <see cref="WeightsHelp"/>).
    /// </summary>
    /// <param name="path">The converted weights file.</param>
    /// <param name="device">Device to move the network to, or null for the CPU.</param>
    /// <exception cref="FileNotFoundException">The file does not exist; the message says which file is needed and where it comes from.</exception>
    /// <exception cref="InvalidDataException">A tensor is missing, unexpected or of the wrong shape; the message names it.</exception>
    public static InceptionV3 FromFile(string path, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Inception-v3 weights file '{path}' does not exist. {WeightsHelp}", path);
        if (path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException(
                $"'{path}' is a PyTorch pickle; McDit reads safetensors only. Convert it as docs/evaluation.md shows. {WeightsHelp}");
        using var content = SafeTensors.Load(path);
        var classes = content.Tensors.TryGetValue("fc.bias", out var bias) && bias.ndim == 1 ? (int)bias.shape[0] : 1008;
        var net = new InceptionV3(classes);
        try
        {
            net.LoadWeights(content.Tensors, path);
        }
        catch
        {
            net.Dispose();
            throw;
        }
        if (device is not null) net.to(device);
        return net;
    }

    /// <summary>
    /// Copies named tensors into the network, checking every name and shape. <c>num_batches_tracked</c> buffers may be
    /// absent and <c>AuxLogits.*</c> tensors (torchvision's auxiliary head) are ignored; anything else missing or
    /// unexpected is an error that names the tensor.
    /// </summary>
    /// <param name="tensors">Tensors by PyTorch name.</param>
    /// <param name="source">Name of their source for error messages (for example the file path).</param>
    public void LoadWeights(IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var _ = no_grad();
        var expected = state_dict();
        var missing = expected.Keys
            .Where(k => !tensors.ContainsKey(k) && !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException(
                $"Inception-v3 weights '{source}' lack {missing.Count} tensor(s): {string.Join(", ", missing.Take(8))}" +
                $"{(missing.Count > 8 ? ", …" : "")}. {WeightsHelp}");
        var unexpected = tensors.Keys
            .Where(k => !expected.ContainsKey(k) && !k.StartsWith("AuxLogits.", StringComparison.Ordinal)).ToList();
        if (unexpected.Count > 0)
            throw new InvalidDataException(
                $"Inception-v3 weights '{source}' hold tensor(s) this network does not have: {string.Join(", ", unexpected.Take(8))}" +
                $"{(unexpected.Count > 8 ? ", …" : "")}. Expected the FID Inception (pytorch-fid's parameter names).");
        foreach (var (name, target) in expected)
        {
            if (!tensors.TryGetValue(name, out var value)) continue; // an absent num_batches_tracked
            if (!value.shape.SequenceEqual(target.shape))
                throw new InvalidDataException(
                    $"Inception-v3 weights '{source}': tensor '{name}' has shape [{string.Join(", ", value.shape)}], " +
                    $"expected [{string.Join(", ", target.shape)}].");
            target.copy_(value.to(target.dtype, target.device));
        }
    }

    /// <summary>pool_3 features [N, 2048] of images [N, C, H, W] in [-1, 1].</summary>
    public override Tensor forward(Tensor images)
    {
        using var output = Features(images);
        return output.Pool.clone();
    }

    /// <summary>pool_3, sFID spatial features and logits of images [N, C, H, W] in [-1, 1] (C = 1 or 3), in float32
    /// on the network's device.</summary>
    public InceptionV3Output Features(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.ndim != 4 || (images.shape[1] != 1 && images.shape[1] != 3))
            throw new ArgumentException(
                $"images has shape [{string.Join(", ", images.shape)}]; expected [N, C, H, W] with C = 1 or 3.", nameof(images));
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var device = fc.weight!.device;
        var x = images.to(float32, device);
        if (x.shape[1] == 1) x = x.expand(-1, 3, -1, -1);
        if (x.shape[2] != InputSize || x.shape[3] != InputSize)
            x = F.interpolate(x, new long[] { InputSize, InputSize }, mode: InterpolationMode.Bilinear, align_corners: false);

        x = Conv2d_2b_3x3.call(Conv2d_2a_3x3.call(Conv2d_1a_3x3.call(x)));    // 147×147×64
        x = F.max_pool2d(x, 3, stride: 2);                                       // 73×73×64
        x = Conv2d_4a_3x3.call(Conv2d_3b_1x1.call(x));                           // 71×71×192
        x = F.max_pool2d(x, 3, stride: 2);                                       // 35×35×192
        x = Mixed_5d.call(Mixed_5c.call(Mixed_5b.call(x)));                      // 35×35×288
        x = Mixed_6c.call(Mixed_6b.call(Mixed_6a.call(x)));                      // 17×17×768
        var mixed6Conv = Mixed_6d.Branch1x1(x);                                  // 17×17×192 (TF mixed_6/conv)
        x = Mixed_6e.call(Mixed_6d.Forward(x, mixed6Conv));                      // 17×17×768
        x = Mixed_7c.call(Mixed_7b.call(Mixed_7a.call(x)));                      // 8×8×2048
        var pool = F.adaptive_avg_pool2d(x, new long[] { 1, 1 }).flatten(1);     // 2048
        var spatial = mixed6Conv.narrow(1, 0, 7).permute(0, 2, 3, 1).flatten(1); // 17·17·7, HWC order
        var logits = pool.matmul(fc.weight!.t());
        return new InceptionV3Output(pool.MoveToOuterDisposeScope(), spatial.MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope());
    }
}
