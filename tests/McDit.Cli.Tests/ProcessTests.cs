using System.Diagnostics;
using McDit.Cli.Runs;
using Xunit;

namespace McDit.Cli.Tests;

/// <summary>The mcdit program as a separate process: signals and environment.</summary>
public sealed class ProcessTests : IDisposable
{
    readonly string _folder = CliRunner.TempFolder();

    static Process Start(string arguments, Action<ProcessStartInfo>? configure = null)
    {
        var info = new ProcessStartInfo("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "mcdit.dll")}\" {arguments}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        configure?.Invoke(info);
        return Process.Start(info)!;
    }

    [Fact]
    public void AnInterruptedRunKeepsACheckpointAndResumesFromIt()
    {
        // Ctrl+C and SIGTERM cancel this token (Commands/Interruption.cs); here a watcher cancels it after 3 steps.
        using var cancel = new CancellationTokenSource();
        var run = new RunFolder(_folder);
        var watcher = Task.Run(async () =>
        {
            while (!cancel.IsCancellationRequested && MetricsLog.ReadAll(run.MetricsFile).Count < 3) await Task.Delay(20);
            cancel.Cancel();
        });
        var output = new StringWriter();
        var settings = new TrainSettings { Steps = 400, BatchSize = 4, Device = "cpu", SampleEvery = 0, CheckpointEvery = 0, Method = McDit.Torch.Training.TrainingMethod.DiT };
        var summary = new TrainingSession(output, interactive: false).Start(run, settings, cancel.Token);
        watcher.Wait();
        Assert.True(summary.Interrupted);
        Assert.Contains("Interrupted", output.ToString());
        var latest = run.Checkpoints.Latest;
        Assert.NotNull(latest);
        long saved = McDit.Torch.Training.Checkpoint.ReadState(latest!).Step;
        Assert.InRange(saved, 3, 399);
        Assert.Equal(saved, MetricsLog.ReadAll(run.MetricsFile).Count);

        var (exit, _, error) = CliRunner.Run("train", "--resume", "--out", _folder, "--steps", (saved + 1).ToString());
        Assert.True(exit == 0, error);
        Assert.Equal(saved + 1, MetricsLog.ReadAll(run.MetricsFile).Count);
    }

    [Fact]
    public void ALibTorchDirThatDoesNotExistIsNamed()
    {
        using var process = Start($"train --out \"{_folder}\" --steps 1", i => i.Environment["LIBTORCH_DIR"] = "/no/such/libtorch");
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("LIBTORCH_DIR='/no/such/libtorch' does not exist", error);
    }

    [Fact]
    public void TheProgressLineShowsTheThreadsInUseAndThreadsOverridesThem()
    {
        foreach (var (threads, expected) in new[] { ((int?)null, "1 thread "), (2, "2 threads ") })
        {
            var folder = Path.Combine(_folder, threads?.ToString() ?? "auto");
            var extra = threads is { } t ? $" --threads {t}" : "";
            // The test process's OMP_NUM_THREADS=1 (TorchThreads.cs) is the automatic choice; --threads overrides it.
            using var process = Start($"train --out \"{folder}\" --model Micro/4 --steps 2 --batch-size 4 --device cpu --sample-every 0 --checkpoint-every 0{extra}");
            string output = process.StandardOutput.ReadToEnd(); // a few lines: neither pipe fills up
            string error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, error);
            Assert.Contains(expected, output);
        }
        var (exit, _, message) = CliRunner.Run("train", "--out", _folder, "--threads", "0");
        Assert.Equal(2, exit);
        Assert.Contains("--threads", message);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, true);
    }
}
