using System.Security.Cryptography;
using McDit.Cli.Runs;
using Xunit;
using Xunit.Abstractions;

namespace McDit.Reliability.Tests;

/// <summary>
/// Real <c>mcdit train</c> processes killed (SIGKILL), terminated (SIGTERM) and interrupted (Ctrl+C, SIGINT) at seeded
/// random steps of both stages, at the stage switch and right after a partial last batch, then resumed with
/// <c>--resume</c> until done: every checkpoint file, model.zip and the final grid must equal, byte for byte, those of a
/// run that was never stopped; resuming the finished run must change nothing.
/// </summary>
public sealed class KillResumeTests : IDisposable
{
    readonly ITestOutputHelper _log;
    readonly string _root = Path.Combine(Path.GetTempPath(), "mcdit-killresume-" + Guid.NewGuid().ToString("N"));

    public KillResumeTests(ITestOutputHelper log) => _log = log;

    // 10 images, batch 4: batches of 4, 4 and 2 rows, so steps 3, 6, 9 and 12 end an epoch with a partial batch.
    const int Images = 10, Batch = 4, Stage1 = 7, Stage2 = 5, Total = Stage1 + Stage2;
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    string Data()
    {
        var folder = Path.Combine(_root, "data");
        if (Directory.Exists(folder)) return folder;
        return McDit.Tests.RandomImageFolder.Write(folder, Images, seed: 5);
    }

    string[] Train(string method, string output) => new[]
    {
        "train", "--out", output, "--data", Data(), "--image-size", "8", "--model", "Micro/4", "--method", method,
        "--steps", Stage1.ToString(), "--unmask-steps", Stage2.ToString(), "--batch-size", Batch.ToString(),
        "--checkpoint-every", "2", "--sample-every", "0", "--sampler-steps", "1", "--grid-columns", "1", "--device", "cpu", "--seed", "3",
    };

    static string[] Resume(string output) => new[] { "train", "--resume", "--out", output };

    /// <summary>Runs mcdit to its end.</summary>
    static ChildProcess RunToEnd(string[] args, string what)
    {
        var p = ChildProcess.Start("mcdit.dll", args);
        Assert.True(p.WaitForExit(Timeout), $"{what}: mcdit did not finish in {Timeout}");
        Assert.True(p.ExitCode == 0, $"{what}: exit {p.ExitCode}\n{p.Error}\n{p.Output}");
        return p;
    }

    static int Steps(RunFolder run) => MetricsLog.ReadAll(run.MetricsFile).Count;

    /// <summary>
    /// Starts mcdit, waits until <paramref name="step"/> steps are logged (each step pauses 150 ms), waits
    /// <paramref name="jitterMs"/> more, and sends the signal. Without jitter the run also holds after that step until the
    /// signal comes, so it lands exactly there even on a loaded machine (where 150 ms can pass before the poll sees the step).
    /// </summary>
    (int Step, int Exit) Interrupt(string[] args, RunFolder run, int step, int signal, int jitterMs, bool resume)
    {
        var env = new Dictionary<string, string> { ["MCDIT_TEST_STEP_DELAY_MS"] = "150" };
        if (jitterMs == 0) env["MCDIT_TEST_PAUSE_AT_STEP"] = step.ToString();
        using var p = ChildProcess.Start("mcdit.dll", args, env);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // A resumed run first cuts metrics.jsonl back to its checkpoint (or starts over), then says so: only then do the lines count.
        while (resume && !p.HasExited && !p.Output.Contains("Resuming ") && !p.Output.Contains("starting it over") && clock.Elapsed < Timeout) Thread.Sleep(5);
        while (!p.HasExited && Steps(run) < step && clock.Elapsed < Timeout) Thread.Sleep(5);
        if (p.HasExited) Assert.Fail($"mcdit ended before step {step}: exit {p.ExitCode}\n{p.Error}\n{p.Output}");
        if (jitterMs > 0) Thread.Sleep(jitterMs);
        int at = Steps(run);
        p.Signal(signal);
        Assert.True(p.WaitForExit(Timeout), "mcdit did not stop after the signal");
        // SIGKILL shows as 137; SIGTERM and Ctrl+C write a checkpoint and exit 130, unless they arrive after the last
        // step has begun, when the run just finishes (exit 0). Counted at the next-to-last step, the signal can reach a
        // loaded machine's process only once the last step runs, or after it has exited: then finishing is right too
        // (for SIGKILL as well: a process that has already ended cannot be killed).
        bool finishedFirst = at >= Total - 1 && p.ExitCode == 0 && Steps(run) == Total;
        int expected = finishedFirst ? 0 : signal == ChildProcess.SIGKILL ? 137 : 130;
        Assert.True(p.ExitCode == expected, $"signal {signal} at step {at}: exit {p.ExitCode}, expected {expected}\n{p.Error}\n{p.Output}");
        if (expected == 130) Assert.Contains("Interrupted", p.Output);
        return (at, p.ExitCode);
    }

    static Dictionary<string, string> Hashes(string folder) =>
        Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith("metrics.jsonl") && !f.EndsWith("loss.png")) // timings and their plot
            .ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    public static IEnumerable<object[]> Methods() => new[]
    {
        new object[] { "DiT", 0 }, new object[] { "MaskDiT", 1 }, new object[] { "McDiT", 2 },
    };

    [Theory]
    [MemberData(nameof(Methods))]
    public void KilledAtAnyStepAndResumedTheRunEndsByteForByteAsOneNeverStopped(string method, int index)
    {
        var straight = Path.Combine(_root, method + "-straight");
        RunToEnd(Train(method, straight), "uninterrupted run");

        // Five interruptions, seeded per method: a random step of stage 1, the stage switch, right after a partial
        // last batch, a random step of stage 2 with a random delay (which may land inside a checkpoint write), and
        // the first step of stage 2. The signals rotate with the method so each kind of stop meets each position.
        var random = Seeds.Random(1000 + index);
        int[] signals = { ChildProcess.SIGKILL, ChildProcess.SIGINT, ChildProcess.SIGTERM };
        var plan = new (int Step, int Jitter)[]
        {
            (random.Next(1, 6), random.Next(0, 100)),      // stage 1
            (Stage1, 0),                                   // the switch: after the last step of stage 1
            (Stage1 + 1, 0),                               // the first step of stage 2
            (9, 0),                                        // the end of epoch 2: a partial batch of 2 rows, in stage 2
            (random.Next(10, Total), random.Next(0, 400)), // stage 2, perhaps inside a checkpoint write
        };
        var split = Path.Combine(_root, method + "-split");
        var run = new RunFolder(split);
        bool started = false;
        var done = new List<string>();
        for (int k = 0; k < plan.Length; k++)
        {
            int signal = signals[(k + index) % signals.Length];
            var (step, jitter) = plan[k];
            // After a SIGKILL the run restarts from its last checkpoint, so the next target may already be behind it.
            long resumeFrom = started && run.Checkpoints.Latest is { } latest ? McDit.Torch.Training.Checkpoint.ReadState(latest).Step : 0;
            if (step <= resumeFrom) step = (int)resumeFrom + 1;
            if (step >= Total) break;
            var (at, _) = Interrupt(started ? Resume(split) : Train(method, split), run, step, signal, jitter, resume: started);
            started = true;
            done.Add($"{(signal == 9 ? "SIGKILL" : signal == 2 ? "SIGINT" : "SIGTERM")}@{at}");
        }
        var last = RunToEnd(Resume(split), "final resume");
        Assert.True(last.Output.Contains("Resuming") || last.Output.Contains("Nothing to do"), last.Output);
        _log.WriteLine($"{method}: {string.Join(", ", done)}; resumed from {Path.GetFileName(run.Checkpoints.Latest)}");

        var expected = Hashes(straight);
        var actual = Hashes(split);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order()); // the same checkpoints, files and samples, no temporary files
        foreach (var (file, hash) in expected)
            Assert.True(hash == actual[file], $"{method} ({string.Join(", ", done)}): {file} differs from the uninterrupted run");
        Assert.Equal(MetricsLog.ReadAll(new RunFolder(straight).MetricsFile).Select(e => e.Loss),
            MetricsLog.ReadAll(run.MetricsFile).Select(e => e.Loss));
        Assert.Contains(run.Checkpoints.For(Total), Directory.GetDirectories(run.Checkpoints.Folder));

        // Resuming a finished run changes nothing.
        var times = Directory.GetFiles(split, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var again = RunToEnd(Resume(split), "resume of the finished run");
        Assert.Contains("Nothing to do", again.Output);
        Assert.Equal(actual, Hashes(split));
        foreach (var (f, t) in times) Assert.Equal(t, File.GetLastWriteTimeUtc(f));
        Assert.True(done.Count >= 4, $"only {done.Count} interruptions happened: {string.Join(", ", done)}");
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }
}
