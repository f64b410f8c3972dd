using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// AdamW (decoupled weight decay) with PyTorch's update rule, float32 master weights and state kept by parameter
/// name, so it checkpoints to safetensors and resumes bit for bit. With a bfloat16 model the masters stay in
/// float32 and are copied into the model after each step.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly List<(string Name, Tensor Param, Tensor Master, Tensor M, Tensor V)> _slots = new();

    /// <summary>Learning rate.</summary>
    public double LearningRate { get; set; }
    /// <summary>β1, β2.</summary>
    public (double Beta1, double Beta2) Betas { get; }
    /// <summary>ε of the denominator.</summary>
    public double Epsilon { get; }
    /// <summary>Decoupled weight decay.</summary>
    public double WeightDecay { get; }
    /// <summary>Number of updates made so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>Creates the optimizer over the named trainable parameters.</summary>
    public AdamW(IEnumerable<(string Name, Tensor Param)> parameters, double learningRate, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, double weightDecay = 0)
    {
        LearningRate = learningRate; Betas = (beta1, beta2); Epsilon = epsilon; WeightDecay = weightDecay;
        using var _ = no_grad();
        foreach (var (name, p) in parameters)
        {
            var master = p.dtype == ScalarType.Float32 ? p : p.detach().to_type(ScalarType.Float32).DetachFromDisposeScope();
            _slots.Add((name, p, master,
                zeros_like(master).DetachFromDisposeScope(), zeros_like(master).DetachFromDisposeScope()));
        }
    }

    /// <summary>The float32 master weights by name (the model's own parameters when it is float32).</summary>
    public IReadOnlyDictionary<string, Tensor> MasterWeights => _slots.ToDictionary(s => s.Name, s => s.Master);

    /// <summary>
    /// Clears the gradients (PyTorch's <c>zero_grad(set_to_none=True)</c>): every parameter's gradient becomes none, so a
    /// parameter the next backward pass does not reach has no gradient and <see cref="Step"/> leaves it and its moments as
    /// they are. (Zeroed gradients would keep moving it by momentum, and a resumed run, whose gradients start as none,
    /// would then differ from an uninterrupted one.)
    /// </summary>
    public void ZeroGrad()
    {
        foreach (var s in _slots) s.Param.grad = null;
    }

    /// <summary>Scales gradients so that their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public double ClipGradNorm(double maxNorm)
    {
        using var scope = NewDisposeScope();
        var grads = _slots.Where(s => s.Param.grad is not null).Select(s => s.Param.grad!.to_type(ScalarType.Float32)).ToList();
        if (grads.Count == 0) return 0;
        var norm = stack(grads.Select(g => g.square().sum()).ToArray()).sum().sqrt().item<float>();
        if (maxNorm > 0 && norm > maxNorm)
        {
            double factor = maxNorm / (norm + 1e-6);
            using var _ = no_grad();
            using var held = factor.ToScalar(); // held, not implicit: see HeldScalars
            foreach (var s in _slots) s.Param.grad?.mul_(held);
        }
        return norm;
    }

    /// <summary>One AdamW update of every parameter that has a gradient; parameters without one (none since <see cref="ZeroGrad"/>) do not move and their moments do not change.</summary>
    public void Step()
    {
        StepCount++;
        var (b1, b2) = Betas;
        double bias1 = 1 - Math.Pow(b1, StepCount), bias2 = 1 - Math.Pow(b2, StepCount);
        double stepSize = LearningRate / bias1, bias2Sqrt = Math.Sqrt(bias2);
        using var _ = no_grad();
        // The Scalars of the update, made once per step and freed here (not one per call per parameter, left to finalizers).
        using Scalar decay = (1 - LearningRate * WeightDecay).ToScalar(), beta1 = b1.ToScalar(), oneMinusBeta1 = (1 - b1).ToScalar(),
            beta2 = b2.ToScalar(), oneMinusBeta2 = (1 - b2).ToScalar(), bias2Root = bias2Sqrt.ToScalar(), eps = Epsilon.ToScalar(),
            negativeStep = (-stepSize).ToScalar();
        foreach (var (_, param, master, m, v) in _slots)
        {
            using var scope = NewDisposeScope(); // each .grad access makes a managed wrapper
            var grad = param.grad;
            if (grad is null) continue;
            var g = grad.dtype == ScalarType.Float32 ? grad : grad.to_type(ScalarType.Float32);
            if (WeightDecay != 0) master.mul_(decay);
            m.mul_(beta1).add_(g, alpha: oneMinusBeta1);
            v.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
            var denominator = v.sqrt().div_(bias2Root).add_(eps, HeldScalars.One);
            master.addcdiv_(m, denominator, value: negativeStep);
            if (!ReferenceEquals(master, param)) param.copy_(master);
        }
    }

    /// <summary>State as named tensors for a checkpoint: <c>exp_avg.NAME</c>, <c>exp_avg_sq.NAME</c>, and masters when separate.</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var s in _slots)
        {
            state["exp_avg." + s.Name] = s.M;
            state["exp_avg_sq." + s.Name] = s.V;
            if (!ReferenceEquals(s.Master, s.Param)) state["master." + s.Name] = s.Master;
        }
        return state;
    }

    /// <summary>Restores state saved by <see cref="StateTensors"/> and the step count.</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount, string source)
    {
        using var _ = no_grad();
        foreach (var s in _slots)
        {
            Tensor Get(string key) => state.TryGetValue(key, out var t)
                ? t
                : throw new InvalidDataException($"{source}: the optimizer state has no '{key}'; the checkpoint does not match this model.");
            s.M.copy_(Get("exp_avg." + s.Name));
            s.V.copy_(Get("exp_avg_sq." + s.Name));
            if (!ReferenceEquals(s.Master, s.Param)) s.Master.copy_(Get("master." + s.Name));
        }
        StepCount = stepCount;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var s in _slots)
        {
            s.M.Dispose(); s.V.Dispose();
            if (!ReferenceEquals(s.Master, s.Param)) s.Master.Dispose();
        }
        _slots.Clear();
    }
}
