using System.IO.Compression;
using McDit.MLNet.Generation;
using McDit.MLNet.Trainers;
using McDit.Torch.Training;
using Microsoft.ML;
using Xunit;
using static McDit.MLNet.Tests.Trainers.McDitTestData;

namespace McDit.MLNet.Tests.Trainers;

/// <summary>Model zips: deterministic atomic saving, verified loading with named errors; trainer resume edge cases.</summary>
public sealed class ModelFileTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), "mcdit-modelfile-" + Guid.NewGuid().ToString("N"));

    string PathFor(string name)
    {
        Directory.CreateDirectory(_root);
        return Path.Combine(_root, name);
    }

    (MLContext Ml, McDitModel Model, IDataView Data) Trained(int steps = 2)
    {
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        return (ml, ml.McDit().Trainers.DiffusionTransformer(Options(steps)).Fit(data), data);
    }

    [Fact]
    public void SavingTheSameModelTwiceGivesTheSameBytes()
    {
        var (ml, model, data) = Trained();
        var a = PathFor("a.zip");
        var b = PathFor("b.zip");
        McDitModelFile.Save(ml, model, data.Schema, a);
        Thread.Sleep(2100); // zip times have a 2-second resolution: a later save would differ if they were kept
        McDitModelFile.Save(ml, model, data.Schema, b);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        using var zip = ZipFile.OpenRead(a);
        Assert.All(zip.Entries, e => Assert.Equal(new DateTime(1980, 1, 1), e.LastWriteTime.DateTime));
        var loaded = McDitModel.Load(a, "cpu");
        Assert.Equal(model.TrainedSteps, loaded.TrainedSteps);
        Assert.Empty(Directory.GetFiles(_root, ".*"));
    }

    /// <summary>Rewrites one entry of a zip (a valid zip with other content) or corrupts raw bytes.</summary>
    static void ReplaceEntry(string path, string suffix, Func<byte[], byte[]> change)
    {
        var entries = new List<(string Name, byte[] Data)>();
        using (var zip = ZipFile.OpenRead(path))
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                entries.Add((e.FullName, e.FullName.EndsWith(suffix, StringComparison.Ordinal) ? change(ms.ToArray()) : ms.ToArray()));
            }
        File.Delete(path);
        using var output = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, bytes) in entries)
        {
            using var s = output.CreateEntry(name).Open();
            s.Write(bytes);
        }
    }

    [Fact]
    public void AnEntryThatFailsItsCrcIsNamedAndNothingIsLoaded()
    {
        var (ml, model, data) = Trained();
        var path = PathFor("crc.zip");
        McDitModelFile.Save(ml, model, data.Schema, path);
        // Flip a byte inside the stored CRC-32 of the weights entry (central directory): data and sizes stay valid.
        var bytes = File.ReadAllBytes(path);
        int cd = FindLast(bytes, "TransformerChain/model.safetensors"u8.ToArray()); // the name in the central directory
        bytes[cd - 46 + 16] ^= 0x01;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => McDitModel.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("CRC", e.Message);
    }

    static int FindLast(byte[] haystack, byte[] needle)
    {
        for (int i = haystack.Length - needle.Length; i >= 0; i--)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new InvalidOperationException("not found");
    }

    [Fact]
    public void DamagedSettingsOrWeightsInsideAValidZipAreNamedWithTheFileAndTheEntry()
    {
        var (ml, model, data) = Trained();
        var good = PathFor("good.zip");
        McDitModelFile.Save(ml, model, data.Schema, good);

        var depth = PathFor("depth.zip");
        File.Copy(good, depth);
        ReplaceEntry(depth, "config.json", b => System.Text.Encoding.UTF8.GetBytes(
            System.Text.Encoding.UTF8.GetString(b).Replace("\"Depth\": 1", "\"Depth\": 1000000")));
        var e = Assert.Throws<InvalidDataException>(() => McDitModel.Load(depth));
        Assert.Contains(depth, e.Message);
        Assert.Contains("config.json", e.Message);
        Assert.Contains("Depth", e.Message);

        var ints = PathFor("ints.zip");
        File.Copy(good, ints);
        ReplaceEntry(ints, "model.safetensors", b => McDit.Torch.Tests.Training.SafeTensorsBytes.RelabelDType(b, "F32", "I32"));
        e = Assert.Throws<InvalidDataException>(() => McDitModel.Load(ints));
        Assert.Contains(ints, e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("I32", e.Message);

        var nan = PathFor("nan.zip");
        File.Copy(good, nan);
        ReplaceEntry(nan, "model.safetensors", b => { BitConverter.GetBytes(float.PositiveInfinity).CopyTo(b, b.Length - 4); return b; });
        e = Assert.Throws<InvalidDataException>(() => McDitModel.Load(nan));
        Assert.Contains("NaN or infinite", e.Message);

        var truncated = PathFor("truncated.zip");
        File.WriteAllBytes(truncated, File.ReadAllBytes(good)[..1000]);
        e = Assert.Throws<InvalidDataException>(() => McDitModel.Load(truncated));
        Assert.Contains(truncated, e.Message);
    }

    [Fact]
    public void ResumingAFinishedRunChangesNothingAndKeepsItsLoss()
    {
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        var o = Options(3);
        o.CheckpointFolder = PathFor("finished");
        var first = ml.McDit().Trainers.DiffusionTransformer(o).Fit(data);
        var files = Directory.GetFiles(o.CheckpointFolder, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        var times = files.Keys.ToDictionary(f => f, File.GetLastWriteTimeUtc);
        o.ResumeFromCheckpoint = true;
        var again = ml.McDit().Trainers.DiffusionTransformer(o).Fit(data);
        Assert.Equal(first.FinalLoss, again.FinalLoss);
        Assert.False(double.IsNaN(again.FinalLoss));
        Assert.Equal(3, again.TrainedSteps);
        foreach (var (f, bytes) in files)
        {
            Assert.Equal(bytes, File.ReadAllBytes(f));
            Assert.Equal(times[f], File.GetLastWriteTimeUtc(f));
        }
    }

    [Fact]
    public void ResumeSkipsADamagedNewestCheckpointAndSaysWhich()
    {
        var ml = new MLContext(seed: 1);
        var data = KeyData(ml);
        var o = Options(4);
        o.CheckpointFolder = PathFor("damaged");
        o.CheckpointInterval = 2;
        var straight = ml.McDit().Trainers.DiffusionTransformer(o).Fit(data);
        var series = new CheckpointSeries(o.CheckpointFolder);
        var newest = series.For(4);
        var weights = Path.Combine(newest, "optimizer.safetensors");
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..64]);
        var skipped = new List<CheckpointSeries.Damaged>();
        string? resumedFrom = null;
        o.ResumeFromCheckpoint = true;
        o.DamagedCheckpointCallback = skipped.Add;
        o.ResumeCallback = (folder, _) => resumedFrom = folder;
        var resumed = ml.McDit().Trainers.DiffusionTransformer(o).Fit(data);
        Assert.Equal(newest, Assert.Single(skipped).Folder);
        Assert.Equal(series.For(2), resumedFrom);
        Assert.Equal(straight.FinalLoss, resumed.FinalLoss); // steps 3 and 4 again, exactly
    }

    [Fact]
    public void AnOverflowingBatchSizeIsNamedBeforeAnyDataIsRead()
    {
        var ml = new MLContext(seed: 1);
        var o = Options(1);
        o.BatchSize = int.MaxValue;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.McDit().Trainers.DiffusionTransformer(o).Fit(KeyData(ml)));
        Assert.Contains("BatchSize", e.Message);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }
}
