using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Modules;
using McDit.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// One timed case of the side-by-side benchmark (benchmarks/pytorch/compare.py): a training step of a method
/// (<see cref="DiffusionTrainer.Step"/>) or one guided sampler step (one Euler step of <see cref="EdmSampler"/> with
/// guidance 2: the doubled batch [x; x] with labels [y; null] in one forward).
/// </summary>
sealed class BenchmarkCase : IDisposable
{
    private readonly DiffusionTrainer? _trainer;
    private readonly MaskedDiffusionTransformer? _model;
    private readonly Tensor _images, _labels;
    private readonly SamplerOptions? _sampler;

    public long Parameters { get; }
    public Device Device { get; }

    public BenchmarkCase(string kind, TrainingMethod method, string model, int input, int channels, int batch, int classes,
        string device, TrainingPrecision precision)
    {
        var (size, patch) = DiffusionTransformerConfig.ParseName(model);
        var backbone = DiffusionTransformerConfig.Preset(size, patch, input, channels, classes);
        using var g = new Generator(1, torch.CPU);
        if (kind == "train")
        {
            _trainer = new DiffusionTrainer(backbone, new TrainerOptions
            {
                Method = MethodOptions.For(method), Device = device, Precision = precision, Seed = 1,
            });
            Device = _trainer.Device;
            Parameters = _trainer.Model.ParameterCount(trainableOnly: true);
            _images = torch.randn(new long[] { batch, channels, input, input }, generator: g).clamp(-1, 1).DetachFromDisposeScope();
        }
        else if (kind == "sample")
        {
            var config = MethodOptions.For(method).ConfigureModel(backbone).Validated();
            using (Init.Seeded(1)) _model = new MaskedDiffusionTransformer(config);
            Device = McDit.Torch.Runtime.TorchBackend.ResolveDevice(device);
            _model.to(Device);
            if (precision == TrainingPrecision.BFloat16) _model.to(ScalarType.BFloat16);
            _model.eval();
            Parameters = _model.ParameterCount();
            _images = torch.randn(new long[] { batch, channels, input, input }, generator: g).to(Device).DetachFromDisposeScope();
            _sampler = new SamplerOptions { Steps = 1, Solver = SamplerSolver.Euler, GuidanceScale = 2, NullLabel = _model.NullLabel };
        }
        else throw new ArgumentException($"Unknown case '{kind}': expected train or sample.", nameof(kind));
        _labels = torch.randint(0, classes, new long[] { batch }, generator: g).DetachFromDisposeScope();
    }

    /// <summary>One step; returns when its work is done (CUDA synchronised).</summary>
    public void Run()
    {
        if (_trainer is not null) _trainer.Step(_images, _labels);
        else
        {
            using var scope = NewDisposeScope();
            EdmSampler.Sample(ModelDenoiser.Create(_model!), _images, _labels, _sampler!);
        }
        if (Device.type == DeviceType.CUDA) torch.cuda.synchronize();
    }

    public void Dispose()
    {
        _trainer?.Dispose();
        _model?.Dispose();
        _images.Dispose();
        _labels.Dispose();
    }
}
