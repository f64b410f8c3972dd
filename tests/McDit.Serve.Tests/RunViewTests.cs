using System.Net;
using System.Text.Json;
using McDit.Cli.Runs;
using Xunit;

namespace McDit.Serve.Tests;

/// <summary>The training view's API on a run folder whose files the test writes line by line, as a run (and issue 10's new fields) would.</summary>
public sealed class RunViewTests : IDisposable
{
    readonly RunFolder _run = new(TinyRuns.TempFolder());

    public void Dispose() => TinyRuns.Delete(_run.Path);

    ServeFactory Factory() => new(new ServeOptions { Runs = new[] { ServedRuns.From(_run, "written") }, RunPollInterval = TimeSpan.FromMilliseconds(50) });

    static async Task<JsonElement> Get(HttpClient client, string url) =>
        JsonDocument.Parse(await client.GetStringAsync(url)).RootElement.Clone();

    /// <summary>Asks until <paramref name="ready"/> holds for the run (the folder is looked at every 50 ms).</summary>
    static async Task<JsonElement> Until(HttpClient client, Func<JsonElement, bool> ready)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var run = await Get(client, "/api/runs/0");
            if (ready(run)) return run;
            Assert.True(DateTime.UtcNow < deadline, "the run view did not change: " + run);
            await Task.Delay(50);
        }
    }

    void Append(string file, string text) => File.AppendAllText(file, text);

    static string Metrics(long step, double loss, int stage = 1, double seconds = 0) =>
        $"{{\"step\":{step},\"stage\":{stage},\"epoch\":0,\"loss\":{loss},\"learning_rate\":0.001,\"elapsed_seconds\":{seconds},\"a_new_field\":[1,2]}}\n";

    [Fact]
    public async Task TheViewFollowsTheFilesAsTheyAreWrittenAndToleratesWhatItDoesNotKnow()
    {
        using var factory = Factory();
        var client = factory.CreateClient();
        var run = await Get(client, "/api/runs/0");
        Assert.False(run.GetProperty("started").GetBoolean());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/runs/0/grid.png")).StatusCode);

        Directory.CreateDirectory(_run.Path);
        File.WriteAllText(_run.SettingsFile, """{ "Method": "MaskDiT", "Model": "Tiny/4", "Steps": 8, "UnmaskSteps": 2, "Future": { "Knob": 3 } }""");
        Append(_run.MetricsFile, Metrics(1, 2.0, seconds: 1) + Metrics(2, 1.5, seconds: 2) + "{\"step\":3,\"lo");  // a line being written
        run = await Until(client, r => r.GetProperty("step").ValueKind == JsonValueKind.Number);
        Assert.Equal(2, run.GetProperty("step").GetInt64());
        Assert.Equal(10, run.GetProperty("totalSteps").GetInt64());
        Assert.Equal("MaskDiT", run.GetProperty("settings").GetProperty("Method").GetString());
        Assert.Equal("3", run.GetProperty("settings").GetProperty("Future.Knob").GetString());
        Assert.Equal(new long[] { 1, 2 }, run.GetProperty("lossCurve").GetProperty("step").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(1.0, run.GetProperty("stepsPerSecond").GetDouble(), 3);

        Append(_run.MetricsFile, "ss\":1.25,\"stage\":1,\"elapsed_seconds\":3}\n" + Metrics(4, 1.0, stage: 2, seconds: 4));
        run = await Until(client, r => r.GetProperty("step").GetInt64() == 4);
        Assert.Equal(new[] { 2.0, 1.5, 1.25, 1.0 }, run.GetProperty("lossCurve").GetProperty("loss").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(4, run.GetProperty("lossCurve").GetProperty("stage2Step").GetInt64());

        // Evaluations: FD, and whatever accuracy fields the line has (issue 10 adds them), one curve each; odd lines skipped.
        File.WriteAllText(_run.EvaluationsFile,
            "{\"step\":2,\"frechet_distance\":300.5,\"samples\":100}\n" +
            "not json\n" +
            "{\"step\":4,\"frechet_distance\":250,\"class_accuracy\":0.4,\"real_class_accuracy\":0.9,\"per_class_accuracy\":{\"Bag\":0.5}}\n");
        run = await Until(client, r => r.GetProperty("evaluations").GetProperty("step").GetArrayLength() == 2);
        var evaluations = run.GetProperty("evaluations");
        Assert.Equal(new[] { 300.5, 250 }, evaluations.GetProperty("frechetDistance").EnumerateArray().Select(e => e.GetDouble()));
        var accuracy = evaluations.GetProperty("accuracy");
        Assert.Equal(new[] { "class_accuracy", "real_class_accuracy" }, accuracy.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Null, accuracy.GetProperty("class_accuracy")[0].ValueKind);
        Assert.Equal(0.4, accuracy.GetProperty("class_accuracy")[1].GetDouble());
        Assert.Equal("0.5", evaluations.GetProperty("latest").GetProperty("per_class_accuracy.Bag").GetString());

        // The newest grid: final.png beats every step grid.
        Directory.CreateDirectory(_run.SamplesFolder);
        var step = new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 1 };
        File.WriteAllBytes(_run.SamplesFor(2), step);
        run = await Until(client, r => r.GetProperty("grid").ValueKind == JsonValueKind.Object);
        Assert.Equal(2, run.GetProperty("grid").GetProperty("step").GetInt64());
        Assert.Equal(step, await client.GetByteArrayAsync("/api/runs/0/grid.png"));
        var final = new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 2 };
        File.WriteAllBytes(Path.Combine(_run.SamplesFolder, "final.png"), final);
        File.WriteAllBytes(_run.SamplesFor(9), step);
        run = await Until(client, r => r.GetProperty("grid").GetProperty("final").GetBoolean());
        Assert.Equal(final, await client.GetByteArrayAsync("/api/runs/0/grid.png"));
    }

    [Fact]
    public async Task ALogRewrittenByAResumeIsReadAgain()
    {
        using var factory = Factory();
        var client = factory.CreateClient();
        Directory.CreateDirectory(_run.Path);
        Append(_run.MetricsFile, Metrics(1, 3) + Metrics(2, 2) + Metrics(3, 1));
        await Until(client, r => r.GetProperty("step").ValueKind == JsonValueKind.Number && r.GetProperty("step").GetInt64() == 3);
        // --resume from step 2 drops step 3 and goes on: the file is replaced, longer than before.
        File.WriteAllText(_run.MetricsFile, Metrics(1, 3) + Metrics(2, 2) + Metrics(3, 0.5) + Metrics(4, 0.25) + Metrics(5, 0.125));
        var run = await Until(client, r => r.GetProperty("step").ValueKind != JsonValueKind.Number || r.GetProperty("step").GetInt64() != 3);
        Assert.Equal(5, run.GetProperty("step").GetInt64()); // never an empty view in between
        Assert.Equal(new[] { 3, 2, 0.5, 0.25, 0.125 }, run.GetProperty("lossCurve").GetProperty("loss").EnumerateArray().Select(e => e.GetDouble()));
    }

    [Fact]
    public async Task ALongRunIsSentAsAtMostAThousandPointsPerCurve()
    {
        Directory.CreateDirectory(_run.Path);
        File.WriteAllText(_run.MetricsFile, string.Concat(Enumerable.Range(1, 5000).Select(i => Metrics(i, 1 + (i - 1) / 5))));
        using var factory = Factory();
        var run = await Until(factory.CreateClient(), r => r.GetProperty("step").ValueKind == JsonValueKind.Number && r.GetProperty("step").GetInt64() == 5000);
        var curve = run.GetProperty("lossCurve");
        Assert.Equal(1000, curve.GetProperty("step").GetArrayLength());
        Assert.Equal(5000, curve.GetProperty("step")[999].GetInt64());
        // Buckets of five steps, averaged: steps 1-5 have loss 1, steps 6-10 loss 2, …
        Assert.Equal(Enumerable.Range(1, 1000).Select(b => (double)b), curve.GetProperty("loss").EnumerateArray().Select(v => v.GetDouble()));
    }

    [Fact]
    public async Task TheSmoothedLossStartsAgainAtTheUnmaskingStageAsInLossPng()
    {
        using var factory = Factory();
        var client = factory.CreateClient();
        Directory.CreateDirectory(_run.Path);
        Append(_run.MetricsFile, string.Concat(Enumerable.Range(1, 60).Select(i => Metrics(i, i <= 30 ? 3.0 : 0.5, stage: i <= 30 ? 1 : 2))));
        var run = await Until(client, r => r.GetProperty("step").ValueKind == JsonValueKind.Number && r.GetProperty("step").GetInt64() == 60);
        var smoothed = run.GetProperty("lossCurve").GetProperty("smoothed").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(3.0, smoothed[29], 12);
        Assert.Equal(0.5, smoothed[30], 12); // not a blend of 3.0 carried across the boundary
    }

    [Fact]
    public async Task TheRunsEventStreamSaysWhichRunChanged()
    {
        using var factory = Factory();
        var client = factory.CreateClient();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await client.GetAsync("/api/runs/events", HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
        async Task<long> NextVersion()
        {
            while (await reader.ReadLineAsync(cancel.Token) is { } line)
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                    return JsonDocument.Parse(line[6..]).RootElement.GetProperty("runs")[0].GetProperty("version").GetInt64();
            throw new EndOfStreamException();
        }
        long first = await NextVersion();
        Directory.CreateDirectory(_run.Path);
        Append(_run.MetricsFile, Metrics(1, 1));
        Assert.True(await NextVersion() > first);
    }
}
