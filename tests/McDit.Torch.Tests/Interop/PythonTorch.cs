using System.Diagnostics;
using Xunit;

namespace McDit.Torch.Tests.Interop;

/// <summary>
/// Debian's python3 with python3-torch, for the tests that check files against real PyTorch (no network). Where it is
/// missing the tests skip, unless the environment variable CI is set (.ci/run installs python3-torch): then they fail.
/// </summary>
internal static class PythonTorch
{
    public static string Python => Environment.GetEnvironmentVariable("MCDIT_PYTHON") ?? "/usr/bin/python3";

    public static string Script => Path.Combine(AppContext.BaseDirectory, "Interop", "torch_interop.py");

    static readonly Lazy<string?> MissingReason = new(() =>
    {
        if (!File.Exists(Python)) return $"{Python} is missing";
        var (code, output) = RunProcess(Python, "-c", "import torch; print(torch.__version__)");
        return code == 0 ? null : $"{Python} cannot import torch ({output.Trim().Split('\n').LastOrDefault()})";
    });

    /// <summary>Why PyTorch cannot be used, or null when it can.</summary>
    public static string? Missing => MissingReason.Value;

    /// <summary>Runs the test script; fails the test (with the script's output) when it exits non-zero.</summary>
    public static string Run(params string[] args)
    {
        if (Missing is { } why) Assert.Fail($"PyTorch is needed: {why} (apt-get install python3-torch).");
        var (code, output) = RunProcess(Python, new[] { Script }.Concat(args).ToArray());
        Assert.True(code == 0, $"torch_interop.py {string.Join(' ', args)} exited {code}:\n{output}");
        return output;
    }

    /// <summary>Runs the test script and returns its exit code and output, without failing.</summary>
    public static (int Code, string Output) TryRun(params string[] args) => RunProcess(Python, new[] { Script }.Concat(args).ToArray());

    static (int, string) RunProcess(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["OMP_NUM_THREADS"] = "1";
        info.Environment["MKL_NUM_THREADS"] = "1";
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>A fact that needs PyTorch: skipped where python3-torch is missing and CI is unset; under CI it runs (and fails without it).</summary>
public sealed class TorchFactAttribute : FactAttribute
{
    public TorchFactAttribute()
    {
        if (PythonTorch.Missing is { } why && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            Skip = why + " (apt-get install python3-torch); CI installs it and runs this test.";
    }
}
