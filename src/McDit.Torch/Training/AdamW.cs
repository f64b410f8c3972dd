using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Training;

/// <summary>
/// AdamW (decoupled weight decay) with PyTorch's update rule, float32 master weights and state kept by parameter
/// name, so it checkpoints to safetensors and resumes bit for bit. With a bfloat16 model the masters stay in
/// float32 and are copied into the model after each step.
/// </summary>
/// <remarks>
/// How the update runs depends on where the parameters live. On a CPU every float32 parameter takes one fused pass over
/// its memory (<see cref="CpuFusedUpdates"/>). On a GPU the parameters, masters and moments are laid out in one flat
/// buffer each (<see cref="AdamWLayout.Flat"/>; the parameters become views into it, which changes nothing for their
/// users), so a step is about ten kernels for the whole model instead of eight per parameter: per-parameter launches,
/// not arithmetic, are what an optimizer step costs on a GPU at the batch sizes of the benchmarks (PyTorch's AdamW uses
/// its multi-tensor kernels there for the same reason).
/// </remarks>
public sealed class AdamW : IDisposable
{
    private sealed record Slot(string Name, Tensor Param, Tensor Master, Tensor M, Tensor V, long Offset);

    // The flat buffers of AdamWLayout.Flat: Master, M and V in float32, Params in the parameters' dtype when that is not
    // float32 (then the masters are separate); each slot's tensors are views at its Offset.
    private sealed record FlatBuffers(Tensor Master, Tensor M, Tensor V, Tensor? Params);

    private readonly List<Slot> _slots = new();
    private readonly FlatBuffers? _flat;

    /// <summary>The default ε (PyTorch's).</summary>
    public const double DefaultEpsilon = 1e-8;

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
    /// <summary>How the state is laid out (chosen from the parameters' device unless given).</summary>
    internal AdamWLayout Layout { get; }

    /// <summary>
    /// Creates the optimizer over the named trainable parameters. On a GPU (all parameters on one CUDA device) the
    /// parameters are moved into one flat buffer, in place: each stays the same tensor object with the same values,
    /// now a view.
    /// </summary>
    public AdamW(IEnumerable<(string Name, Tensor Param)> parameters, double learningRate, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = DefaultEpsilon, double weightDecay = 0)
        : this(parameters, learningRate, beta1, beta2, epsilon, weightDecay, layout: null) { }

    internal AdamW(IEnumerable<(string Name, Tensor Param)> parameters, double learningRate, double beta1, double beta2,
        double epsilon, double weightDecay, AdamWLayout? layout)
    {
        LearningRate = learningRate; Betas = (beta1, beta2); Epsilon = epsilon; WeightDecay = weightDecay;
        var list = parameters.ToList();
        bool oneDevice = list.Count > 0 && list.All(p => p.Param.device_type == list[0].Param.device_type
            && p.Param.device_index == list[0].Param.device_index && p.Param.dtype == list[0].Param.dtype);
        Layout = layout ?? (oneDevice && list[0].Param.device_type != DeviceType.CPU ? AdamWLayout.Flat : AdamWLayout.PerParameter);
        if (Layout == AdamWLayout.Flat && !oneDevice && list.Count > 0)
            throw new ArgumentException("AdamW's flat layout needs every parameter on one device in one dtype.", nameof(parameters));
        using var _ = no_grad();
        if (Layout == AdamWLayout.Flat)
        {
            _flat = CreateFlat(list);
            return;
        }
        foreach (var (name, p) in list)
        {
            var master = p.dtype == ScalarType.Float32 ? p : p.detach().to_type(ScalarType.Float32).DetachFromDisposeScope();
            _slots.Add(new Slot(name, p, master, zeros_like(master).DetachFromDisposeScope(), zeros_like(master).DetachFromDisposeScope(), 0));
        }
    }

    private FlatBuffers? CreateFlat(List<(string Name, Tensor Param)> list)
    {
        if (list.Count == 0) return null;
        long total = list.Sum(p => p.Param.numel());
        var device = list[0].Param.device;
        bool separateMasters = list[0].Param.dtype != ScalarType.Float32;
        var flat = new FlatBuffers(
            zeros(total, ScalarType.Float32, device).DetachFromDisposeScope(),
            zeros(total, ScalarType.Float32, device).DetachFromDisposeScope(),
            zeros(total, ScalarType.Float32, device).DetachFromDisposeScope(),
            separateMasters ? zeros(total, list[0].Param.dtype, device).DetachFromDisposeScope() : null);
        long offset = 0;
        foreach (var (name, p) in list)
        {
            long n = p.numel();
            Tensor View(Tensor buffer) => buffer.narrow(0, offset, n).view(p.shape).DetachFromDisposeScope();
            var master = p;
            if (separateMasters)
            {
                master = View(flat.Master);
                master.copy_(p);
                Link(p, View(flat.Params!));
            }
            else Link(p, View(flat.Master));
            _slots.Add(new Slot(name, p, master, View(flat.M), View(flat.V), offset));
            offset += n;
        }
        return flat;
    }

    // Points the parameter at its place in a flat buffer (its values copied there first); the tensor object stays the
    // same, and the place's own handle is freed (the parameter now holds the storage).
    private static void Link(Tensor param, Tensor place)
    {
        place.copy_(param);
        param.set_(place);
        place.Dispose();
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

    /// <summary>
    /// Whether float32 CPU parameters take the fused update (<see cref="CpuFusedUpdates"/>: one pass over memory per
    /// tensor) rather than libtorch's element-wise ops (default true; the two agree to rounding, see AdamWTests).
    /// </summary>
    internal bool FusedCpuUpdates { get; set; } = true;

    /// <summary>One AdamW update of every parameter that has a gradient; parameters without one (none since <see cref="ZeroGrad"/>) do not move and their moments do not change.</summary>
    public void Step()
    {
        StepCount++;
        var (b1, b2) = Betas;
        double bias1 = 1 - Math.Pow(b1, StepCount), bias2 = 1 - Math.Pow(b2, StepCount);
        double stepSize = LearningRate / bias1, bias2Sqrt = Math.Sqrt(bias2);
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // each .grad access makes a managed wrapper (of the same gradient)
        var grads = _slots.Select(s => s.Param.grad).ToArray();
        var separate = new List<(Slot Slot, Tensor Grad)>();
        if (_flat is null)
        {
            var fused = new List<(Tensor Master, Tensor Grad, Tensor M, Tensor V)>();
            for (int i = 0; i < _slots.Count; i++)
            {
                var (slot, grad) = (_slots[i], grads[i]);
                if (grad is null) continue;
                if (FusedCpuUpdates && ReferenceEquals(slot.Master, slot.Param) && CpuFusedUpdates.Applies(slot.Master, grad, slot.M, slot.V))
                    fused.Add((slot.Master, grad, slot.M, slot.V));
                else separate.Add((slot, grad));
            }
            if (fused.Count > 0)
                CpuFusedUpdates.AdamW(fused, new CpuFusedUpdates.AdamWConstants(
                    (float)(1 - LearningRate * WeightDecay), (float)b1, (float)(1 - b1), (float)b2, (float)(1 - b2), (float)bias2Sqrt, (float)Epsilon,
                    (float)-stepSize, WeightDecay != 0), torch.get_num_threads());
            if (separate.Count == 0) return;
        }
        // The Scalars of the update, made once per step and freed here (not one per call per parameter, left to finalizers).
        using Scalar decay = (1 - LearningRate * WeightDecay).ToScalar(), beta1 = b1.ToScalar(), oneMinusBeta1 = (1 - b1).ToScalar(),
            beta2 = b2.ToScalar(), oneMinusBeta2 = (1 - b2).ToScalar(), bias2Root = bias2Sqrt.ToScalar(), eps = Epsilon.ToScalar(),
            negativeStep = (-stepSize).ToScalar();
        void Update(Tensor master, Tensor grad, Tensor m, Tensor v)
        {
            var g = grad.dtype == ScalarType.Float32 ? grad : grad.to_type(ScalarType.Float32);
            if (WeightDecay != 0) master.mul_(decay);
            m.mul_(beta1).add_(g, alpha: oneMinusBeta1);
            v.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
            var denominator = v.sqrt().div_(bias2Root).add_(eps, HeldScalars.One);
            master.addcdiv_(m, denominator, value: negativeStep);
        }
        if (_flat is not null)
        {
            StepFlat(_flat, grads, Update);
            return;
        }
        foreach (var (slot, grad) in separate)
        {
            using var temporaries = NewDisposeScope(); // the denominator of one parameter at a time
            Update(slot.Master, grad, slot.M, slot.V);
            if (!ReferenceEquals(slot.Master, slot.Param)) slot.Param.copy_(slot.Master);
        }
    }

    // The flat layout: each run of consecutive parameters that have gradients is one stretch of the flat buffers, updated
    // with one call per op (its gradients concatenated once); usually every parameter has one and that is a single run.
    private void StepFlat(FlatBuffers flat, Tensor?[] grads, Action<Tensor, Tensor, Tensor, Tensor> update)
    {
        var linkedTo = flat.Params ?? flat.Master; // what the parameters are views of
        long start = TensorMemory.Pointer(linkedTo, "AdamW").ToInt64();
        for (int first = 0; first < _slots.Count;)
        {
            if (grads[first] is null) { first++; continue; }
            int end = first;
            while (end < _slots.Count && grads[end] is not null) end++;
            using var temporaries = NewDisposeScope();
            for (int i = first; i < end; i++) Relink(linkedTo, start, _slots[i]);
            long offset = _slots[first].Offset, length = _slots[end - 1].Offset + _slots[end - 1].Param.numel() - offset;
            var grad = end - first == 1
                ? grads[first]!.reshape(-1)
                : cat(Enumerable.Range(first, end - first).Select(i => grads[i]!.reshape(-1)).ToArray(), 0);
            var master = flat.Master.narrow(0, offset, length);
            update(master, grad, flat.M.narrow(0, offset, length), flat.V.narrow(0, offset, length));
            flat.Params?.narrow(0, offset, length).copy_(master);
            first = end;
        }
    }

    // A parameter whose storage was replaced since (set_, or a load that swapped it) is put back into its place, with its
    // current values, so the flat update keeps reaching the tensor the model computes with. (A separate float32 master
    // keeps its own values, as in the per-parameter layout: the step writes it into the parameter.)
    private static void Relink(Tensor buffer, long bufferStart, Slot slot)
    {
        long n = slot.Param.numel();
        long expected = bufferStart + slot.Offset * buffer.ElementSize;
        if (n == 0 || slot.Param.is_contiguous() && TensorMemory.Pointer(slot.Param, "AdamW").ToInt64() == expected) return;
        Link(slot.Param, buffer.narrow(0, slot.Offset, n).view(slot.Param.shape));
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
        // The parameters keep their storage (they hold it too); the optimizer's own buffers go.
        _flat?.Master.Dispose(); _flat?.M.Dispose(); _flat?.V.Dispose(); _flat?.Params?.Dispose();
    }
}

/// <summary>How <see cref="AdamW"/> keeps its state.</summary>
internal enum AdamWLayout
{
    /// <summary>Separate tensors per parameter (on a CPU with the fused update of <see cref="CpuFusedUpdates"/>).</summary>
    PerParameter,
    /// <summary>One flat buffer each for parameters, masters and moments; the parameters are views into it.</summary>
    Flat,
}
