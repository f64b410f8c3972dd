using McDit.MLNet.Generation;
using McDit.Torch.Diffusion;
using McDit.Torch.Interop;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using Microsoft.ML;
using TorchSharp;
using Xunit;

namespace McDit.MLNet.Tests.Generation;

/// <summary>A generator from DiT weights (LoadReference): DiT's sampler by default, per-row noise, saving and loading as a model zip.</summary>
public sealed class ReferenceModelTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"mcdit-reference-{Guid.NewGuid():N}");

    public ReferenceModelTests()
    {
        Directory.CreateDirectory(_dir);
        TorchBackend.EnsureInitialized();
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    string DiTFile()
    {
        var path = Path.Combine(_dir, "dit.safetensors");
        using var fixture = SafeTensors.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "dit_tiny_golden.safetensors"));
        var weights = fixture.Tensors.Where(kv => !kv.Key.StartsWith("input.") && !kv.Key.StartsWith("output") && !kv.Key.StartsWith("cfg."))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        SafeTensors.Save(path, weights);
        return path;
    }

    [Fact]
    public void DiTWeightsSampleWithDdpmRowByRowAndSurviveAModelZip()
    {
        var ml = new MLContext(seed: 0);
        var model = ml.McDit().LoadReference(DiTFile(), device: "cpu").WithSampling(samplingSteps: 6, guidanceScale: 4);
        Assert.Equal(SamplerSolver.Ddpm, model.Solver);
        Assert.Equal(DiffusionFormulation.VpEpsilon, model.Config.Formulation);
        Assert.Equal(10, model.NumberOfClasses);

        // A row's sample depends on its seed and class only, not on the rows sampled with it (DDPM draws step noise per row).
        using var batch = model.Generate(3, new[] { 1, 7, 3 }, seed: 40);
        using var alone = model.Generate(1, new[] { 7 }, seed: 41);
        // Up to the rounding of batched arithmetic (amplified by guidance 4 over the steps); other noise would differ by O(1).
        double error = (batch[1] - alone[0]).norm().item<float>() / alone[0].norm().item<float>();
        Assert.True(error < 1e-4, $"relative difference {error}");
        Assert.True(batch[0].isfinite().all().item<bool>());

        // Heun through the VP→EDM denoiser gives other (finite) samples.
        using var heun = model.WithSampling(solver: SamplerSolver.Heun, samplingSteps: 4).Generate(1, new[] { 7 }, seed: 41);
        Assert.True(heun.isfinite().all().item<bool>());
        Assert.True((heun - alone).abs().max().item<float>() > 1e-3);

        var zip = Path.Combine(_dir, "dit.zip");
        McDitModelFile.Save(ml, model, null, zip);
        var loaded = McDitModelFile.LoadGenerator(new MLContext(seed: 0), zip, "cpu");
        Assert.Equal(DiffusionFormulation.VpEpsilon, loaded.Config.Formulation);
        Assert.Equal(SamplerSolver.Ddpm, loaded.Solver);
        using var again = loaded.Generate(1, new[] { 7 }, seed: 41);
        Assert.True((again - alone).abs().max().item<float>() == 0);
    }

    [Fact]
    public void ATableWithoutNullRowRefusesGuidanceAndUnconditionalRows()
    {
        var path = Path.Combine(_dir, "dit10.safetensors");
        using (var fixture = SafeTensors.Load(DiTFile()))
        {
            var w = fixture.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
            w["y_embedder.embedding_table.weight"] = w["y_embedder.embedding_table.weight"][..10].contiguous();
            SafeTensors.Save(path, w);
        }
        var model = new MLContext(seed: 0).McDit().LoadReference(path, ReferenceFormat.DiT, new ReferenceImportOptions { NumClasses = 10 }, device: "cpu")
            .WithSampling(samplingSteps: 3);
        Assert.False(model.Config.HasNullLabel);
        using (var ok = model.WithSampling(guidanceScale: 1).Generate(1, new[] { 2 })) Assert.True(ok.isfinite().all().item<bool>());
        Assert.Contains("null label", Assert.Throws<ArgumentException>(() => model.WithSampling(guidanceScale: 4).Generate(1, new[] { 2 })).Message);
        Assert.Contains("null label", Assert.ThrowsAny<ArgumentException>(() => model.WithSampling(guidanceScale: 1).Generate(1, new[] { -1 })).Message);
    }
}
