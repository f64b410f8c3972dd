using McDit.MLNet.Imaging;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace McDit.Serve.Training;

/// <summary>
/// Follows one run folder as it is trained: reads the lines appended to metrics.jsonl since the last look, re-reads
/// run.json and evaluations.jsonl when they change, and finds the newest sample grid. Fields it does not know are
/// kept or ignored, missing ones are left out, and a torn last line waits for its end.
/// </summary>
internal sealed partial class RunWatcher
{
    /// <summary>Largest run.json, evaluations.jsonl or sample grid read (bytes); larger files are reported, not read.</summary>
    internal const long MaxSmallFile = 64L << 20;
    /// <summary>Most points of a curve sent to the page (long runs are averaged over buckets of steps).</summary>
    internal const int MaxCurvePoints = 1000;

    private readonly object _lock = new();
    private readonly ServedRun _run;
    private long _version;

    private (long, DateTime) _settingsStamp;
    private JsonObject? _settings;
    private string? _settingsError;

    private long _metricsOffset;
    private readonly List<long> _steps = new();
    private readonly List<double> _loss = new();
    private long _stage2Step = -1;
    private JsonObject? _lastMetrics;
    // Recent (step, elapsed seconds) of this training session: the speed now, not since a resume.
    private readonly Queue<(long Step, double Seconds)> _recent = new();

    private (long, DateTime) _evaluationsStamp;
    private readonly List<JsonObject> _evaluations = new();

    private (string Path, long Length, DateTime Time, long Step)? _grid;
    private (string Path, long Length, DateTime Time, byte[] Bytes)? _gridBytes;

    public RunWatcher(int index, ServedRun run)
    {
        Index = index;
        _run = run;
    }

    public int Index { get; }
    public ServedRun Run => _run;

    /// <summary>Changes with every change seen in the folder.</summary>
    public long Version { get { lock (_lock) return _version; } }

    /// <summary>Looks at the folder's files; true when something changed.</summary>
    public bool Refresh()
    {
        lock (_lock)
        {
            bool changed = RefreshSettings() | RefreshMetrics() | RefreshEvaluations() | RefreshGrid();
            if (changed) _version++;
            return changed;
        }
    }

    static (long, DateTime) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
    }

    bool RefreshSettings()
    {
        var stamp = Stamp(_run.SettingsFile);
        if (stamp == _settingsStamp) return false;
        _settingsStamp = stamp;
        _settings = null;
        _settingsError = null;
        if (stamp.Item1 < 0) return true;
        if (stamp.Item1 > MaxSmallFile) { _settingsError = $"run.json is {stamp.Item1} bytes; not read."; return true; }
        try
        {
            _settings = JsonNode.Parse(ReadShared(_run.SettingsFile)) as JsonObject;
            if (_settings is null) _settingsError = "run.json holds no JSON object.";
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            _settingsStamp = default; // written right now: look again next time
            _settingsError = "run.json could not be read: " + e.Message;
        }
        return true;
    }

    bool RefreshMetrics(bool retry = true)
    {
        var info = new FileInfo(_run.MetricsFile);
        if (!info.Exists)
        {
            if (_metricsOffset == 0 && _steps.Count == 0) return false;
            ResetMetrics();
            return true;
        }
        if (info.Length < _metricsOffset) ResetMetrics(); // rewritten (a resumed run drops the steps after its checkpoint)
        if (info.Length == _metricsOffset) return false;
        byte[] chunk;
        try
        {
            using var stream = new FileStream(_run.MetricsFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            stream.Seek(_metricsOffset, SeekOrigin.Begin);
            // A bounded read per look; a long log is taken in over several looks.
            chunk = new byte[(int)Math.Min(stream.Length - _metricsOffset, 16 << 20)];
            stream.ReadExactly(chunk);
        }
        catch (IOException)
        {
            return false;
        }
        int end = Array.LastIndexOf(chunk, (byte)'\n');
        if (end < 0) return false; // only a line being written
        bool changed = false;
        foreach (var line in Encoding.UTF8.GetString(chunk, 0, end).Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject? entry;
            try { entry = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { entry = null; }
            long? step = entry is null ? null : Long(entry, "step");
            if (step is null || (_steps.Count > 0 && step <= _steps[^1]))
            {
                // Not the continuation of what was read: the log was replaced (a resume). Read it again from the start.
                ResetMetrics();
                if (retry) RefreshMetrics(retry: false);
                return true;
            }
            _lastMetrics = entry;
            if (Number(entry!, "elapsed_seconds") is { } seconds)
            {
                if (_recent.Count > 0 && seconds < _recent.Last().Seconds) _recent.Clear(); // a new session's clock
                _recent.Enqueue((step.Value, seconds));
                if (_recent.Count > 64) _recent.Dequeue();
            }
            if (Number(entry!, "loss") is { } loss)
            {
                _steps.Add(step.Value);
                _loss.Add(loss);
            }
            if (_stage2Step < 0 && Long(entry!, "stage") == 2) _stage2Step = step.Value;
            changed = true;
        }
        _metricsOffset += end + 1;
        return changed;
    }

    void ResetMetrics()
    {
        _metricsOffset = 0;
        _steps.Clear();
        _loss.Clear();
        _stage2Step = -1;
        _lastMetrics = null;
        _recent.Clear();
    }

    bool RefreshEvaluations()
    {
        var stamp = Stamp(_run.EvaluationsFile);
        if (stamp == _evaluationsStamp) return false;
        _evaluationsStamp = stamp;
        _evaluations.Clear();
        if (stamp.Item1 < 0 || stamp.Item1 > MaxSmallFile) return true;
        string text;
        try { text = ReadShared(_run.EvaluationsFile); }
        catch (IOException) { _evaluationsStamp = default; return true; }
        foreach (var line in text.Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonNode.Parse(line) is JsonObject entry && Long(entry, "step") is not null) _evaluations.Add(entry);
            }
            catch (JsonException)
            {
                // a torn or foreign line
            }
        }
        _evaluations.Sort((a, b) => Long(a, "step")!.Value.CompareTo(Long(b, "step")!.Value));
        return true;
    }

    [GeneratedRegex(@"^step-(\d{1,18})\.png$")]
    private static partial Regex StepGrid();

    bool RefreshGrid()
    {
        (string Path, long Length, DateTime Time, long Step)? best = null;
        if (Directory.Exists(_run.SamplesFolder))
        {
            try
            {
                foreach (var file in new DirectoryInfo(_run.SamplesFolder).EnumerateFiles("*.png"))
                {
                    long step = file.Name == "final.png" ? long.MaxValue
                        : StepGrid().Match(file.Name) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
                    if (step < 0 || file.Name.StartsWith('.')) continue;
                    if (best is null || step > best.Value.Step) best = (file.FullName, file.Length, file.LastWriteTimeUtc, step);
                }
            }
            catch (IOException)
            {
                return false;
            }
        }
        if (best == _grid) return false;
        _grid = best;
        return true;
    }

    /// <summary>The newest sample grid's PNG bytes (a file of the run's samples folder the watcher found, never a requested path).</summary>
    public byte[]? GridPng()
    {
        lock (_lock)
        {
            if (_grid is not { } grid || grid.Length > MaxSmallFile) return null;
            if (_gridBytes is { } cached && cached.Path == grid.Path && cached.Length == grid.Length && cached.Time == grid.Time) return cached.Bytes;
            try
            {
                var bytes = File.ReadAllBytes(grid.Path);
                _gridBytes = (grid.Path, grid.Length, grid.Time, bytes);
                return bytes;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>The run as the page draws it.</summary>
    public object Snapshot()
    {
        lock (_lock)
        {
            long? total = null;
            if (_settings is not null && Long(_settings, "steps") is { } stage1) total = stage1 + (Long(_settings, "unmask_steps") ?? 0);
            long? step = _lastMetrics is null ? null : Long(_lastMetrics, "step");
            double? elapsed = _lastMetrics is null ? null : Number(_lastMetrics, "elapsed_seconds");
            double? rate = null;
            if (_recent.Count >= 2 && _recent.Last().Seconds > _recent.Peek().Seconds)
                rate = Math.Round((_recent.Last().Step - _recent.Peek().Step) / (_recent.Last().Seconds - _recent.Peek().Seconds), 3);
            var (curveSteps, curveLoss, curveSmoothed) = Curve();
            return new
            {
                index = Index,
                name = _run.Name,
                folder = _run.Folder,
                version = _version,
                started = _settings is not null || _steps.Count > 0,
                settings = _settings is null ? null : Flatten(_settings),
                settingsError = _settingsError,
                step,
                totalSteps = total,
                stage = _lastMetrics is null ? null : Long(_lastMetrics, "stage"),
                loss = _loss.Count == 0 ? (double?)null : _loss[^1],
                learningRate = _lastMetrics is null ? null : Number(_lastMetrics, "learning_rate"),
                elapsedSeconds = elapsed,
                stepsPerSecond = rate,
                lossCurve = new { step = curveSteps, loss = curveLoss, smoothed = curveSmoothed, stage2Step = _stage2Step < 0 ? (long?)null : _stage2Step },
                evaluations = Evaluations(),
                grid = _grid is { } g
                    ? new { url = $"/api/runs/{Index}/grid.png?v={g.Length}-{g.Time.Ticks}", step = g.Step == long.MaxValue ? (long?)null : g.Step, final = g.Step == long.MaxValue }
                    : null,
            };
        }
    }

    /// <summary>The loss per step, averaged over buckets when there are more than <see cref="MaxCurvePoints"/>, and its smoothed curve (as loss.png draws it).</summary>
    (long[] Steps, double[] Loss, double[] Smoothed) Curve()
    {
        int n = _loss.Count;
        if (n == 0) return (Array.Empty<long>(), Array.Empty<double>(), Array.Empty<double>());
        var smoothed = LossSmoothing.Smooth(_loss, _stage2Step < 0 ? -1 : _steps.FindIndex(step => step >= _stage2Step));
        int points = Math.Min(n, MaxCurvePoints);
        var steps = new long[points];
        var loss = new double[points];
        var smooth = new double[points];
        for (int b = 0; b < points; b++)
        {
            int start = (int)((long)b * n / points), stop = (int)((long)(b + 1) * n / points);
            double sum = 0;
            for (int i = start; i < stop; i++) sum += _loss[i];
            steps[b] = _steps[stop - 1];
            loss[b] = sum / (stop - start);
            smooth[b] = smoothed[stop - 1];
        }
        return (steps, loss, smooth);
    }

    object Evaluations()
    {
        var steps = new List<long>();
        var fd = new List<double?>();
        var accuracy = new SortedDictionary<string, List<double?>>(StringComparer.Ordinal);
        foreach (var (entry, i) in _evaluations.Select((e, i) => (e, i)))
        {
            steps.Add(Long(entry, "step")!.Value);
            fd.Add(Number(entry, "frechet_distance"));
            // Class accuracy fields are whatever numbers have "accuracy" in their name (overall, real-image ceiling, …).
            foreach (var (key, value) in entry)
            {
                if (!key.Contains("accuracy", StringComparison.OrdinalIgnoreCase) || Number(entry, key) is not { } v) continue;
                if (!accuracy.TryGetValue(key, out var series)) accuracy[key] = series = Enumerable.Repeat<double?>(null, i).ToList();
                series.Add(v);
            }
            foreach (var series in accuracy.Values)
                while (series.Count < i + 1) series.Add(null);
        }
        return new
        {
            step = steps,
            frechetDistance = fd,
            accuracy,
            latest = _evaluations.Count == 0 ? null : Flatten(_evaluations[^1]),
        };
    }

    /// <summary>A JSON object's fields as text, nested objects with dotted names (what the settings table shows).</summary>
    static SortedDictionary<string, string> Flatten(JsonObject obj)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(JsonNode? node, string prefix)
        {
            if (result.Count >= 500) return;
            switch (node)
            {
                case JsonObject o:
                    foreach (var (k, v) in o) Walk(v, prefix.Length == 0 ? k : prefix + "." + k);
                    break;
                case null:
                    result[prefix] = "null";
                    break;
                case JsonValue v when v.TryGetValue<string>(out var s):
                    result[prefix] = s.Length > 400 ? s[..400] + "…" : s;
                    break;
                default:
                    var text = node.ToJsonString();
                    result[prefix] = text.Length > 400 ? text[..400] + "…" : text;
                    break;
            }
        }
        Walk(obj, "");
        return result;
    }

    /// <summary>A field by name, matched without case and underscores (run.json is PascalCase, the logs snake_case).</summary>
    static JsonNode? Field(JsonObject obj, string name)
    {
        if (obj.TryGetPropertyValue(name, out var exact)) return exact;
        var wanted = name.Replace("_", "");
        foreach (var (k, v) in obj)
            if (string.Equals(k.Replace("_", ""), wanted, StringComparison.OrdinalIgnoreCase)) return v;
        return null;
    }

    static double? Number(JsonObject obj, string name) =>
        Field(obj, name) is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && double.IsFinite(d) ? d : null;

    static long? Long(JsonObject obj, string name) =>
        Field(obj, name) is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && double.IsFinite(d) && d == Math.Floor(d)
            ? (long)d : null;

    static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
