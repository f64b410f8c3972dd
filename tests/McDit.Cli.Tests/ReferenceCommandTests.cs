using System.Text;
using McDit.Torch.Interop;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using McDit.Torch.Vae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace McDit.Cli.Tests;

/// <summary>
/// mcdit import / export / sample on reference checkpoints: a DiT .pt (written by McDit's torch.save writer from the DiT
/// golden fixture's weights; the PyTorch-written files are tested in McDit.Torch.Tests), a tiny VAE, class names.
/// </summary>
public sealed class ReferenceCommandTests : IDisposable
{
    readonly string _dir = CliRunner.TempFolder();

    public ReferenceCommandTests()
    {
        Directory.CreateDirectory(_dir);
        TorchBackend.EnsureInitialized();
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    static readonly string[] DataPrefixes = { "input.", "output", "cfg.", "train.", "eval.", "sample.", "mask." };

    static Dictionary<string, Tensor> DiTWeights(SafeTensorsContent content) =>
        content.Tensors.Where(kv => !DataPrefixes.Any(p => kv.Key.StartsWith(p, StringComparison.Ordinal))).ToDictionary(kv => kv.Key, kv => kv.Value);

    string Path_(string name) => Path.Combine(_dir, name);

    /// <summary>A random VAE of the tiny fixture's shape (4 latent channels, downsampling 2) saved as a diffusers folder.</summary>
    string VaeFolder()
    {
        var folder = Path_("vae");
        if (Directory.Exists(folder)) return folder;
        using var fixture = SafeTensors.Load(Fixture("vae_tiny_golden.safetensors"));
        var config = AutoencoderKLConfig.FromJson(fixture.Metadata["config"], "vae fixture");
        using var vae = new AutoencoderKL(config);
        vae.Save(folder);
        return folder;
    }

    [Fact]
    public void ImportSampleAndExportADiTCheckpoint()
    {
        var pt = Path_("dit.pt");
        using (var fixture = SafeTensors.Load(Fixture("dit_tiny_golden.safetensors"))) TorchFile.Save(pt, DiTWeights(fixture));

        var zip = Path_("dit.zip");
        var (exit, output, error) = CliRunner.Run("import", pt, "--from", "dit", "--out", zip);
        Assert.True(exit == 0, error);
        Assert.Contains("width 64, depth 2, 4 heads, 10 classes, learned sigma, VpEpsilon; sampler Ddpm 250 steps", output);
        Assert.True(File.Exists(zip));

        // DiT's sampler straight from the .pt file, and EDM Heun from the imported zip, both decoded by the VAE.
        var vae = VaeFolder();
        var grid = Path_("ddpm.png");
        (exit, output, error) = CliRunner.Run("sample", "--from", pt, "--vae", vae, "--classes", "1,7", "--per-class", "2", "--guidance", "4", "--steps", "5", "--device", "cpu", "--out", grid);
        Assert.True(exit == 0, error);
        Assert.Contains("Wrote 4 samples (2 rows × 2)", output);
        using (var image = SixLabors.ImageSharp.Image.Load(grid)) Assert.True(image.Width >= 2 * 16);
        (exit, _, error) = CliRunner.Run("sample", "--from", zip, "--vae", vae, "--solver", "Heun", "--steps", "3", "--classes", "0", "--per-class", "1", "--device", "cpu", "--out", Path_("heun.png"));
        Assert.True(exit == 0, error);

        // Export gives back the very tensors that were imported.
        var back = Path_("back.pt");
        (exit, _, error) = CliRunner.Run("export", "--from", zip, "--to", "dit", "--out", back);
        Assert.True(exit == 0, error);
        using var original = SafeTensors.Load(Fixture("dit_tiny_golden.safetensors"));
        using var exported = TorchFile.Load(back);
        var d = Assert.IsType<PickleDict>(exported.Root);
        var weights = DiTWeights(original);
        Assert.Equal(weights.Keys.Order(), d.Keys.Cast<string>().Order());
        foreach (var (k, v) in weights) Assert.True(v.shape.SequenceEqual(((Tensor)d[k]!).shape) && v.eq((Tensor)d[k]!).all().item<bool>(), k);
    }

    [Fact]
    public void ImageNetClassNamesSelectRows()
    {
        // A tiny DiT with 1000 classes gets the ImageNet names.
        var pt = Path_("imagenet.pt");
        using (var fixture = SafeTensors.Load(Fixture("dit_tiny_golden.safetensors")))
        {
            var w = DiTWeights(fixture);
            using var g = new Generator(1, torch.CPU);
            w["y_embedder.embedding_table.weight"] = torch.randn(new long[] { 1001, 64 }, generator: g) * 0.05;
            TorchFile.Save(pt, w);
        }
        var vae = VaeFolder();
        var (exit, output, error) = CliRunner.Run("sample", "--from", pt, "--vae", vae, "--classes", "golden retriever,Otter,207", "--per-class", "1",
            "--guidance", "4", "--steps", "2", "--device", "cpu", "--out", Path_("names.png"));
        Assert.True(exit == 0, error);
        Assert.Contains("Wrote 3 samples (3 rows × 1)", output);
        (exit, _, error) = CliRunner.Run("sample", "--from", pt, "--vae", vae, "--classes", "golden", "--steps", "2", "--device", "cpu", "--out", Path_("bad.png"));
        Assert.Equal(2, exit);
        Assert.Contains("did you mean 'golden retriever'", error);
    }

    [Fact]
    public void RefusedAndDamagedFilesExitWithBadData()
    {
        var evil = Path_("evil.pt");
        // {'x': os.system('touch …')} as pickle protocol 2, in a torch.save archive.
        var marker = Path_("PWNED");
        var pickle = Encoding.Latin1.GetBytes("\u0080\u0002}X\u0001\u0000\u0000\u0000xcos\nsystem\nX" + (char)(6 + marker.Length) + "\u0000\u0000\u0000touch " + marker + "\u0085Rs.");
        using (var fs = File.Create(evil))
        using (var archive = new System.IO.Compression.ZipArchive(fs, System.IO.Compression.ZipArchiveMode.Create))
        {
            using (var s = archive.CreateEntry("archive/data.pkl").Open()) s.Write(pickle);
            using (var s = archive.CreateEntry("archive/version").Open()) s.Write("3\n"u8);
        }
        var (exit, _, error) = CliRunner.Run("import", evil, "--from", "dit");
        Assert.Equal(3, exit);
        Assert.Contains("os.system", error);
        Assert.False(File.Exists(marker));

        var cut = Path_("cut.pt");
        using (var fixture = SafeTensors.Load(Fixture("dit_tiny_golden.safetensors"))) TorchFile.Save(cut, DiTWeights(fixture));
        var bytes = File.ReadAllBytes(cut);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        (exit, _, error) = CliRunner.Run("sample", "--from", cut, "--steps", "2", "--out", Path_("x.png"));
        Assert.Equal(3, exit);
        Assert.Contains("cut.pt", error);
    }
}
