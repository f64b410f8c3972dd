using Xunit;

namespace McDit.Cli.Tests;

/// <summary>A tiny trained run and damaged copies of its files, for the bad command lines.</summary>
public sealed class BadCommandLineFixture : IDisposable
{
    public string Root { get; } = CliRunner.TempFolder();
    public string Run => Path.Combine(Root, "run");
    public string Zip => Path.Combine(Run, "model.zip");
    public string Checkpoint => Path.Combine(Run, "checkpoints", "step-0000002");
    public string File_ => Path.Combine(Root, "a-file.txt");
    public string EmptyFolder => Path.Combine(Root, "empty");
    public string CrcZip => Path.Combine(Root, "crc.zip");
    public string TruncatedZip => Path.Combine(Root, "truncated.zip");
    public string TextZip => Path.Combine(Root, "text.zip");
    public string DamagedCheckpoint => Path.Combine(Root, "damaged-checkpoint");
    public string DamagedRunJson => Path.Combine(Root, "damaged-run-json");
    public string AllCheckpointsDamaged => Path.Combine(Root, "all-damaged");

    public BadCommandLineFixture()
    {
        var data = Path.Combine(Root, "data");
        McDit.Tests.RandomImageFolder.Write(data, count: 6, seed: 1);
        var (exit, output, error) = CliRunner.Run("train", "--out", Run, "--data", data, "--image-size", "8", "--model", "Micro/4",
            "--steps", "2", "--batch-size", "4", "--checkpoint-every", "1", "--sample-every", "0", "--sampler-steps", "1",
            "--grid-columns", "1", "--device", "cpu", "--method", "MaskDiT");
        if (exit != 0) throw new InvalidOperationException($"fixture training failed ({exit}): {error}\n{output}");

        File.WriteAllText(File_, "not a folder");
        Directory.CreateDirectory(EmptyFolder);
        var zip = File.ReadAllBytes(Zip);
        var crc = (byte[])zip.Clone();
        int name = LastIndexOf(crc, "TransformerChain/model.safetensors"u8.ToArray());
        crc[name - 46 + 16] ^= 0x04; // the entry's CRC-32 in the central directory
        File.WriteAllBytes(CrcZip, crc);
        File.WriteAllBytes(TruncatedZip, zip[..(zip.Length / 2)]);
        File.WriteAllText(TextZip, "hello");
        Copy(Checkpoint, DamagedCheckpoint);
        var ema = Path.Combine(DamagedCheckpoint, "ema.safetensors");
        File.WriteAllBytes(ema, File.ReadAllBytes(ema)[..100]);
        Copy(Run, DamagedRunJson);
        File.WriteAllText(Path.Combine(DamagedRunJson, "run.json"), "{\"Steps\": 1e400,");
        Copy(Run, AllCheckpointsDamaged);
        File.Delete(Path.Combine(AllCheckpointsDamaged, "model.zip"));
        foreach (var folder in Directory.GetDirectories(Path.Combine(AllCheckpointsDamaged, "checkpoints")))
            File.Delete(Path.Combine(folder, "optimizer.safetensors"));
    }

    static int LastIndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = haystack.Length - needle.Length; i >= 0; i--)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new InvalidOperationException("not found");
    }

    static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) Copy(d, Path.Combine(to, Path.GetFileName(d)));
    }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, true);
    }
}

/// <summary>
/// Command lines a user gets wrong. Each must exit 2 (usage), 3 (bad file) or 1, print one line per error on stderr
/// that names the option or file, and never a stack trace (that needs --verbose).
/// </summary>
public sealed class BadCommandLineTests : IClassFixture<BadCommandLineFixture>
{
    readonly BadCommandLineFixture _f;
    public BadCommandLineTests(BadCommandLineFixture fixture) => _f = fixture;

    /// <summary>(arguments with placeholders, expected exit code, text the error must contain).</summary>
    public static IEnumerable<object[]> Cases() => new (string Args, int Exit, string Expected)[]
    {
        ("", 2, "Required command"),
        ("frobnicate", 2, "frobnicate"),
        ("--bogus", 2, "--bogus"),
        ("train --nope", 2, "--nope"),
        ("train --steps", 2, "--steps"),
        ("train --steps abc", 2, "abc"),
        ("train --steps 0", 2, "--steps 0"),
        ("train --steps 99999999999999999999", 2, "99999999999999999999"),
        ("train --steps 3000000000", 2, "--steps 3000000000"),
        ("train --steps 10 --unmask-steps 2147483647", 2, "--steps"),
        ("train --batch-size 0", 2, "--batch-size 0"),
        ("train --batch-size 2147483647", 2, "--batch-size 2147483647"),
        ("train --batch-size 1.5", 2, "1.5"),
        ("train --lr 0", 2, "--lr 0"),
        ("train --lr NaN", 2, "--lr NaN"),
        ("train --lr Infinity", 2, "--lr"),
        ("train --lr 1e999", 2, "--lr"),
        ("train --ema-decay 1.5", 2, "--ema-decay"),
        ("train --grad-clip NaN", 2, "--grad-clip"),
        ("train --mask-ratio 1", 2, "--mask-ratio"),
        ("train --method DiT --mask-ratio 0.5", 2, "--mask-ratio"),
        ("train --lr-warmup -5", 2, "--lr-warmup"),
        ("train --lr-decay linear", 2, "--lr-decay"),
        ("train --branch-ema-decay 2", 2, "--branch-ema-decay"),
        ("train --method MaskDiT --branch-ema-decay 0.99", 2, "--branch-ema-decay"),
        ("train --clean-branch-fraction 0", 2, "--clean-branch-fraction"),
        ("train --clean-branch-fraction 1.5", 2, "--clean-branch-fraction"),
        ("train --method DiT --clean-branch-fraction 0.25", 2, "--clean-branch-fraction"),
        ("train --method GAN", 2, "GAN"),
        ("train --model Huge/3", 2, "Huge/3"),
        ("train --model Tiny/0", 2, "Tiny/0"),
        ("train --model Tiny", 2, "Tiny"),
        ("train --precision Float8", 2, "Float8"),
        ("train --solver RK4", 2, "RK4"),
        ("train --device gpu", 2, "gpu"),
        ("train --device cuda", 2, "CUDA"),
        ("train --device cuda:x", 2, "cuda:x"),
        ("train --data /no/such/folder", 2, "/no/such/folder"),
        ("train --data", 2, "--data"),
        ("train --vae /no/such/vae", 2, "/no/such/vae"),
        ("train --sampler-steps 0", 2, "--sampler-steps"),
        ("train --sampler-steps 100000", 2, "--sampler-steps"),
        ("train --grid-columns 1000", 2, "--grid-columns"),
        ("train --image-size 4", 2, "--image-size"),
        ("train --fd-every 10 --fd-samples 1", 2, "--fd-samples"),
        ("train --guidance NaN", 2, "--guidance"),
        ("train --guidance-interval 0.5,0.1", 2, "--guidance-interval"),
        ("train --shift -1", 2, "--shift"),
        ("train --out {file}", 2, "is a file"),
        ("train --out {run}", 2, "--resume"),
        ("train --resume --out {empty}", 2, "run.json"),
        ("train --resume --out {run} --method DiT", 2, "--method"),
        ("train --resume --out {run} --batch-size 8 --lr 0.1", 2, "--batch-size, --lr"),
        ("train --resume --out {run} --steps 1", 2, "--steps"),
        ("train --resume --out {run} --device cuda", 2, "CUDA"),
        ("train --resume --out {badrunjson}", 3, "run.json"),
        ("train --resume --out {alldamaged}", 3, "optimizer.safetensors"),
        ("sample", 2, "--from"),
        ("sample --from /no/such/run", 2, "/no/such/run"),
        ("sample --from {empty}", 2, "neither a run folder"),
        ("sample --from {run} --classes 0,99", 2, "99"),
        ("sample --from {run} --classes a,b", 2, "--classes"),
        ("sample --from {run} --per-class 0", 2, "--per-class"),
        ("sample --from {run} --per-class 1000", 2, "--per-class"),
        ("sample --from {run} --steps 0", 2, "--steps"),
        ("sample --from {run} --seed 1e400", 2, "1e400"),
        ("sample --from {run} --guidance Infinity", 2, "--guidance"),
        ("sample --from {run} --guidance-interval -1", 2, "--guidance-interval"),
        ("sample --from {run} --guidance-interval fast", 2, "LOW,HIGH"),
        ("sample --from {run} --shift-below 0", 2, "--shift-below"),
        ("sample --from {run} --solver Magic", 2, "Magic"),
        ("sample --from {run} --out {empty}", 2, "is a folder"),
        ("sample --from {zip} --device cuda", 2, "CUDA"),
        ("sample --from {checkpoint} --device cuda:3", 2, "cuda:3"),
        ("sample --from {crczip}", 3, "CRC"),
        ("sample --from {truncatedzip}", 3, "truncated.zip"),
        ("sample --from {textzip}", 3, "text.zip"),
        ("sample --from {damagedcheckpoint}", 3, "ema.safetensors"),
        ("sample --from {alldamaged}", 3, "damaged"),
        ("evaluate", 2, "--from"),
        ("evaluate --from {run} --samples 1", 2, "--samples"),
        ("evaluate --from {run} --reference /no/such/images", 2, "/no/such/images"),
        ("evaluate --from {zip} --device cuda", 2, "CUDA"),
        ("evaluate --from {crczip}", 3, "CRC"),
        ("train --p-std 0", 2, "--p-std"),
        ("train --label-dropout 1.5", 2, "--label-dropout"),
        ("train --train-shift 99", 2, "--train-shift"),
        ("demo --steps 0", 2, "--steps"),
        ("demo --device cuda", 2, "CUDA"),
        ("demo --fd-samples 2000000", 2, "--fd-samples"),
        ("demo --out {file}", 2, "is a file"),
    }.Select(c => new object[] { c.Args, c.Exit, c.Expected });

    string[] Expand(string args) => args.Length == 0 ? Array.Empty<string>() : args.Split(' ').Select(a => a
        .Replace("{run}", _f.Run).Replace("{zip}", _f.Zip).Replace("{checkpoint}", _f.Checkpoint).Replace("{file}", _f.File_)
        .Replace("{empty}", _f.EmptyFolder).Replace("{crczip}", _f.CrcZip).Replace("{truncatedzip}", _f.TruncatedZip)
        .Replace("{textzip}", _f.TextZip).Replace("{damagedcheckpoint}", _f.DamagedCheckpoint)
        .Replace("{badrunjson}", _f.DamagedRunJson).Replace("{alldamaged}", _f.AllCheckpointsDamaged)).ToArray();

    [Theory]
    [MemberData(nameof(Cases))]
    public void ABadCommandLineGetsOneLineAndTheRightExitCode(string args, int exit, string expected)
    {
        var (code, output, error) = CliRunner.Run(Expand(args));
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(code == exit, $"'{args}': exit {code}, expected {exit}; stderr: {error}");
        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.StartsWith("mcdit:", l));
        // One line per error: a command error is one line; a parse error is one line per fault on the command line.
        if (exit != 2 || !lines[0].Contains("--help")) Assert.True(lines.Count(l => !l.Contains("warning:")) == 1, $"'{args}': {lines.Length} lines:\n{error}");
        Assert.Contains(expected, error);
        foreach (var text in new[] { error, output })
        {
            Assert.DoesNotContain("   at ", text);
            Assert.DoesNotContain("Unhandled exception", text);
        }
    }

    [Fact]
    public void VerboseAddsTheStackTrace()
    {
        var (code, _, error) = CliRunner.Run(Expand("--verbose sample --from {crczip}"));
        Assert.Equal(3, code);
        Assert.StartsWith("mcdit:", error);
        Assert.Contains("   at ", error);
    }

    [Fact]
    public void AnotherVerbsExceptionsGetTheirExitCodes()
    {
        // Verbs added by other branches throw ordinary exceptions; the root handler maps them by type.
        var error = new StringWriter();
        Assert.Equal(2, CliErrors.Report(new ArgumentOutOfRangeException("port", 70000, "--port 70000 is out of range: expected 1..65535."), error, verbose: false));
        Assert.Equal(3, CliErrors.Report(new InvalidDataException("weights.pt: not a PyTorch checkpoint."), error, verbose: false));
        Assert.Equal(1, CliErrors.Report(new IOException("disk full"), error, verbose: false));
        Assert.Equal(3, CliErrors.Report(new System.Reflection.TargetInvocationException(new InvalidDataException("inner")), error, verbose: false));
        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Equal("mcdit: --port 70000 is out of range: expected 1..65535.", lines[0].TrimEnd());
        Assert.Equal("mcdit: inner", lines[3].TrimEnd());
    }
}
