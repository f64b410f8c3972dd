using System.Runtime.InteropServices;
using McDit.Cli.Runs;
using McDit.Torch.Data;
using McDit.Torch.IO;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace McDit.Cli.Tests;

/// <summary>
/// `mcdit train` under `mpirun -np 2` (MPI backend, one torch thread per rank): the same weights as one process with
/// the whole batch, exact resume of the 2-rank run, and a rank that dies or stalls ending the job with an error.
/// </summary>
public sealed class DistributedTrainingTests : IDisposable
{
    // 21 rows and batch 8: epochs of 8 + 8 + 5 rows, so 4 steps cross an epoch and include a partial batch whose shards
    // are uneven (3 and 2 rows).
    const int Rows = 21, Steps = 4;
    static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(4);

    readonly string _root = CliRunner.TempFolder();
    readonly ITestOutputHelper _log;

    public DistributedTrainingTests(ITestOutputHelper log)
    {
        _log = log;
        var data = Path.Combine(_root, "data");
        Directory.CreateDirectory(data);
        var random = new Random(11);
        var pixels = new byte[Rows * 28 * 28];
        random.NextBytes(pixels);
        IdxWriter.WriteImages(Path.Combine(data, "train-images-idx3-ubyte"), pixels, Rows, 28, 28, gzip: false);
        IdxWriter.WriteLabels(Path.Combine(data, "train-labels-idx1-ubyte"), Enumerable.Range(0, Rows).Select(i => (byte)(i % 10)).ToArray(), gzip: false);
    }

    string Folder(string name) => Path.Combine(_root, name);

    string[] Train(string folder, string method, long steps, params string[] extra) => new[]
    {
        "train", "--out", folder, "--data", Path.Combine(_root, "data"), "--method", method, "--model", "Tiny/4",
        "--steps", steps.ToString(), "--batch-size", "8", "--device", "cpu", "--seed", "3", "--lr", "1e-3",
        "--sample-every", "0", "--checkpoint-every", "0", "--grid-columns", "1", "--sampler-steps", "2",
    }.Concat(extra).ToArray();

    static Dictionary<string, float[]> Weights(string runFolder)
    {
        var checkpoint = new RunFolder(runFolder).Checkpoints.Latest ?? throw new InvalidOperationException($"{runFolder} has no checkpoint");
        var weights = new Dictionary<string, float[]>();
        foreach (var file in new[] { "model", "ema", "branches" })
        {
            var path = Path.Combine(checkpoint, file + ".safetensors");
            if (!File.Exists(path)) continue;
            using var content = SafeTensors.Load(path);
            foreach (var (name, t) in content.Tensors) weights[file + "." + name] = t.to_type(ScalarType.Float32).data<float>().ToArray();
        }
        return weights;
    }

    static (double Relative, double MaxAbs) Compare(Dictionary<string, float[]> actual, Dictionary<string, float[]> expected)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        double diff = 0, norm = 0, max = 0;
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            for (int i = 0; i < e.Length; i++)
            {
                double d = (double)a[i] - e[i];
                diff += d * d; norm += (double)e[i] * e[i]; max = Math.Max(max, Math.Abs(d));
            }
        }
        return (Math.Sqrt(diff / norm), max);
    }

    [MpiTheory]
    [InlineData("DiT")]
    [InlineData("MaskDiT")]
    [InlineData("McDiT")]
    public void TwoRanksTrainTheSameWeightsAsOneProcessWithTheWholeBatch(string method)
    {
        string together = Folder("together"), alone = Folder("alone");
        var output = MpiJob.Run(2, JobTimeout, Train(together, method, Steps));
        var (exit, _, error) = CliRunner.Run(Train(alone, method, Steps));
        Assert.True(exit == 0, error);

        var (relative, maxAbs) = Compare(Weights(together), Weights(alone));
        _log.WriteLine($"{method}: 2 ranks vs 1 process after {Steps} steps: relative weight error {relative:E2}, max abs {maxAbs:E2}");
        Assert.True(relative < 1e-6, $"{method}: weights of the 2-rank run differ from one process by {relative:E2} (relative)");
        var a = MetricsLog.ReadAll(Path.Combine(together, "metrics.jsonl"));
        var b = MetricsLog.ReadAll(Path.Combine(alone, "metrics.jsonl"));
        Assert.Equal(Steps, a.Count); // rank 0 alone writes the metrics, once per step
        for (int i = 0; i < Steps; i++) Assert.InRange(Math.Abs(a[i].Loss - b[i].Loss), 0, 1e-5 * Math.Abs(b[i].Loss));
        Assert.True(File.Exists(Path.Combine(together, "model.zip")), output);
        Assert.True(File.Exists(Path.Combine(together, "samples", "final.png")));
    }

    [MpiFact]
    public void ATwoRankRunResumesExactly()
    {
        string straight = Folder("straight"), resumed = Folder("resumed");
        MpiJob.Run(2, JobTimeout, Train(straight, "McDiT", Steps));
        MpiJob.Run(2, JobTimeout, Train(resumed, "McDiT", 2));
        var output = MpiJob.Run(2, JobTimeout, "train", "--resume", "--out", resumed, "--steps", Steps.ToString());
        Assert.Contains("Resuming", output);
        var (relative, maxAbs) = Compare(Weights(resumed), Weights(straight));
        _log.WriteLine($"2-rank resume after 2 of {Steps} steps: max abs difference {maxAbs}");
        Assert.Equal(0, maxAbs);
        Assert.Equal(Steps, MetricsLog.ReadAll(Path.Combine(resumed, "metrics.jsonl")).Count);
    }

    /// <summary>Starts a long 2-rank run and waits until rank 0 has logged a few steps.</summary>
    MpiJob StartLongRun(string folder)
    {
        var job = new MpiJob(2, Train(folder, "DiT", 100_000, "--distributed-timeout", "10"));
        var metrics = Path.Combine(folder, "metrics.jsonl");
        var deadline = DateTime.UtcNow + JobTimeout;
        while (MetricsLog.ReadAll(metrics).Count < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "the run did not reach step 3:\n" + job.Output);
            Assert.True(job.Wait(TimeSpan.FromMilliseconds(200)) is null, "the run ended early:\n" + job.Output);
        }
        return job;
    }

    [MpiFact]
    public void AStalledRankMakesTheOtherFailWithAClearErrorInsteadOfHanging()
    {
        using var job = StartLongRun(Folder("stalled"));
        int rank1 = job.RankProcess(1) ?? throw new InvalidOperationException("rank 1's process was not found");
        Assert.Equal(0, Kill(rank1, 19)); // SIGSTOP: alive but silent, as a hung rank or a lost machine
        var exit = job.Wait(TimeSpan.FromSeconds(90));
        Kill(rank1, 9);
        _log.WriteLine(job.Output[^Math.Min(1500, job.Output.Length)..]);
        Assert.True(exit is not null, "the job still runs 90 s after rank 1 stalled:\n" + job.Output);
        Assert.NotEqual(0, exit);
        Assert.Contains("did not complete within 10 s", job.Output);
        Assert.Contains("McDit rank 0 of 2 (mpi)", job.Output);
    }

    [MpiFact]
    public void ARankThatDiesEndsTheJob()
    {
        using var job = StartLongRun(Folder("killed"));
        int rank1 = job.RankProcess(1) ?? throw new InvalidOperationException("rank 1's process was not found");
        Assert.Equal(0, Kill(rank1, 9));
        var exit = job.Wait(TimeSpan.FromSeconds(90));
        _log.WriteLine(job.Output[^Math.Min(1500, job.Output.Length)..]);
        Assert.True(exit is not null, "the job still runs 90 s after rank 1 died:\n" + job.Output);
        Assert.NotEqual(0, exit);
        // mpirun notices the dead rank and stops rank 0, or rank 0's collective times out first.
        Assert.True(job.Output.Contains("rank 1") && (job.Output.Contains("signal 9") || job.Output.Contains("did not complete")), job.Output);
    }

    [Fact]
    public void TrainHelpSaysHowToLaunchOnSeveralProcessesAndMachines()
    {
        var (exit, output, _) = CliRunner.Run("train", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("mpirun -np N", output);
        Assert.Contains("--hostfile", output);
        Assert.Contains("MASTER_ADDR", output);
        Assert.Contains("--distributed", output);
        Assert.Contains("docs/distributed.md", output);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }
}
