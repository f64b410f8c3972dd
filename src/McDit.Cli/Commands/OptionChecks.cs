using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using McDit.Torch.Runtime;

namespace McDit.Cli.Commands;

/// <summary>
/// Validators for command-line options. They run while the command line is parsed, before any work starts, and turn a
/// bad value into a parse error (exit 2) that names the option, the value and what is expected.
/// </summary>
internal static class OptionChecks
{
    /// <summary>The most images per training step.</summary>
    public const int MaxBatchSize = 65_536;
    /// <summary>The most sampler steps.</summary>
    public const int MaxSamplerSteps = 1_000;
    /// <summary>The most generated images for an FD measurement.</summary>
    public const int MaxFdSamples = 1_000_000;

    static string Name(OptionResult r) => r.Option.Name;

    // A value that does not convert (--batch-size x) is reported by the parser itself; validators then have nothing to check.
    static bool TryValue<T>(OptionResult r, out T value)
    {
        try
        {
            value = r.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    /// <summary>The value must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<int> InRange(this Option<int> option, int min, int max, string what)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<int>(r, out var v)) return;
            if (v < min || v > max) r.AddError($"{Name(r)} {v} is out of range: expected {what}, {min}..{max}.");
        });
        return option;
    }

    /// <summary>The value, when given, must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<int?> InRange(this Option<int?> option, int min, int max, string what)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<int?>(r, out var v) || v is not { } value) return;
            if (value < min || value > max) r.AddError($"{Name(r)} {value} is out of range: expected {what}, {min}..{max}.");
        });
        return option;
    }

    /// <summary>The value must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<long> InRange(this Option<long> option, long min, long max, string what)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<long>(r, out var v)) return;
            if (v < min || v > max) r.AddError($"{Name(r)} {v} is out of range: expected {what}, {min}..{max}.");
        });
        return option;
    }

    /// <summary>The value must be a finite number in [<paramref name="min"/>, <paramref name="max"/>] (or (<paramref name="min"/>, … when <paramref name="minExclusive"/>).</summary>
    public static Option<double> Finite(this Option<double> option, double min, double max, string what, bool minExclusive = false, bool maxExclusive = false)
    {
        option.Validators.Add(r =>
        {
            if (TryValue<double>(r, out var v)) Check(r, v, min, max, what, minExclusive, maxExclusive);
        });
        return option;
    }

    /// <summary>Like <see cref="Finite(Option{double}, double, double, string, bool, bool)"/> for an optional value.</summary>
    public static Option<double?> Finite(this Option<double?> option, double min, double max, string what, bool minExclusive = false, bool maxExclusive = false)
    {
        option.Validators.Add(r =>
        {
            if (TryValue<double?>(r, out var value) && value is { } v) Check(r, v, min, max, what, minExclusive, maxExclusive);
        });
        return option;
    }

    static void Check(OptionResult r, double v, double min, double max, string what, bool minExclusive, bool maxExclusive)
    {
        bool ok = double.IsFinite(v) && (minExclusive ? v > min : v >= min) && (maxExclusive ? v < max : v <= max);
        if (!ok)
            r.AddError(string.Create(CultureInfo.InvariantCulture,
                $"{Name(r)} {v} is out of range: expected {what}, a number in {(minExclusive ? "(" : "[")}{min}, {max}{(maxExclusive ? ")" : "]")}."));
    }

    /// <summary>The value must name a device this machine has: cpu, auto, or cuda / cuda:N where CUDA is available.</summary>
    public static Option<string> Device(this Option<string> option)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<string>(r, out var v)) return;
            if (!TorchBackend.IsDeviceName(v)) { r.AddError($"{Name(r)} '{v}' is not a device: expected cpu, cuda, cuda:N or auto."); return; }
            if (!v!.Trim().StartsWith("cuda", StringComparison.OrdinalIgnoreCase)) return;
            try { TorchBackend.ResolveDevice(v); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                r.AddError($"{Name(r)} {v}: {e.Message}");
            }
        });
        return option;
    }

    /// <summary>The value must be a non-empty path; with <paramref name="mustExist"/>, of an existing file or folder.</summary>
    public static Option<string> Path(this Option<string> option, bool mustExist, string what) => PathCore(option, mustExist, what, fileExpected: null);

    /// <summary>The value must be a non-empty path of a file to write (not an existing folder).</summary>
    public static Option<string> OutputFile(this Option<string> option, string what) => PathCore(option, false, what, fileExpected: true);

    /// <summary>The value must be a non-empty path of a folder to write (not an existing file).</summary>
    public static Option<string> OutputFolder(this Option<string> option, string what) => PathCore(option, false, what, fileExpected: false);

    /// <summary>Like <see cref="Path"/> for an optional value.</summary>
    public static Option<string?> OptionalPath(this Option<string?> option, bool mustExist, string what)
    {
        option.Validators.Add(r =>
        {
            if (TryValue<string?>(r, out var v) && v is not null) CheckPath(r, v, mustExist, what, null);
        });
        return option;
    }

    static Option<string> PathCore(Option<string> option, bool mustExist, string what, bool? fileExpected)
    {
        option.Validators.Add(r =>
        {
            if (TryValue<string>(r, out var v)) CheckPath(r, v, mustExist, what, fileExpected);
        });
        return option;
    }

    static void CheckPath(OptionResult r, string? v, bool mustExist, string what, bool? fileExpected)
    {
        if (string.IsNullOrWhiteSpace(v)) { r.AddError($"{Name(r)} is empty: expected {what}."); return; }
        if (v.IndexOfAny(System.IO.Path.GetInvalidPathChars()) >= 0 || v.Contains('\0')) { r.AddError($"{Name(r)} '{v}' is not a valid path."); return; }
        bool isFile = File.Exists(v), isFolder = Directory.Exists(v);
        if (mustExist && !isFile && !isFolder) r.AddError($"{Name(r)} '{v}' does not exist: expected {what}.");
        else if (fileExpected == true && isFolder) r.AddError($"{Name(r)} '{v}' is a folder: expected {what}.");
        else if (fileExpected == false && isFile) r.AddError($"{Name(r)} '{v}' is a file: expected {what}.");
    }

    /// <summary>
    /// The value must be a comma-separated list of classes: indices (0,3,7) or names ("golden retriever,otter"); their
    /// range and the names are checked against the model later.
    /// </summary>
    public static Option<string?> ClassList(this Option<string?> option)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<string?>(r, out var v) || v is null) return;
            var parts = v.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length == 0 || parts.Any(p => p.Length == 0 || !(int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _) || IsName(p))))
                r.AddError($"{Name(r)} '{v}' is not a list of classes: expected comma-separated class indices ≥ 0 or class names, e.g. 0,3,7 or \"golden retriever,otter\".");
            else if (parts.Length > 1_000)
                r.AddError($"{Name(r)} lists {parts.Length} classes: expected at most 1000 rows.");
        });
        return option;
    }

    /// <summary>
    /// The value must be a guidance interval "LOW" or "LOW,HIGH" of noise levels σ (0 ≤ LOW &lt; HIGH; HIGH may be "inf").
    /// Parse it with <see cref="ParseGuidanceInterval"/>.
    /// </summary>
    public static Option<string?> GuidanceInterval(this Option<string?> option)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<string?>(r, out var v) || v is null) return;
            if (ParseGuidanceInterval(v) is null)
                r.AddError($"{Name(r)} '{v}' is not a guidance interval: expected LOW or LOW,HIGH noise levels with 0 ≤ LOW < HIGH (HIGH may be inf), e.g. 0.28 or 0.28,5.42.");
        });
        return option;
    }

    /// <summary>"LOW" or "LOW,HIGH" → (low, high] with high = +∞ when left out or "inf"; null when it is not one.</summary>
    public static (double Low, double High)? ParseGuidanceInterval(string? value)
    {
        if (value is null) return null;
        var parts = value.Split(',', StringSplitOptions.TrimEntries);
        static bool Number(string s, out double x)
        {
            if (s.Equals("inf", StringComparison.OrdinalIgnoreCase)) { x = double.PositiveInfinity; return true; }
            return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out x) && double.IsFinite(x);
        }
        if (parts.Length is < 1 or > 2 || !Number(parts[0], out var low) || double.IsInfinity(low) || low < 0) return null;
        double high = double.PositiveInfinity;
        if (parts.Length == 2 && (!Number(parts[1], out high) || !(high > low))) return null;
        return (low, high);
    }

    // A class name: starts with a letter; letters, digits, spaces and - ' ( ) . _ / &.
    static bool IsName(string p) => char.IsLetter(p[0]) && p.Length <= 200 && p.All(c => char.IsLetterOrDigit(c) || " -'()._/&".Contains(c));

    /// <summary>The value must name a model preset such as Tiny/4 or S/2.</summary>
    public static Option<string> ModelPreset(this Option<string> option)
    {
        option.Validators.Add(r =>
        {
            if (!TryValue<string>(r, out var v)) return;
            try { McDit.Torch.Models.DiffusionTransformerConfig.ParseName(v ?? ""); }
            catch (ArgumentException e) { r.AddError($"{Name(r)}: {e.Message.Split(" (Parameter")[0]}"); }
        });
        return option;
    }

    /// <summary>The value must be 'embedded', 'fashion-mnist' or an existing folder.</summary>
    public static Option<string> DataSource(this Option<string> option)
    {
        option.Validators.Add(r =>
        {
            if (TryValue<string>(r, out var v)) CheckData(r, v);
        });
        return option;
    }

    /// <summary>Like <see cref="DataSource"/> for an optional value.</summary>
    public static Option<string?> OptionalDataSource(this Option<string?> option)
    {
        option.Validators.Add(r =>
        {
            if (TryValue<string?>(r, out var v) && v is not null) CheckData(r, v);
        });
        return option;
    }

    static void CheckData(OptionResult r, string? v)
    {
        if (string.IsNullOrWhiteSpace(v)) { r.AddError($"{Name(r)} is empty: expected 'embedded', 'fashion-mnist' or a data folder."); return; }
        if (v.Equals("embedded", StringComparison.OrdinalIgnoreCase) || v.Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase)) return;
        if (!Directory.Exists(v))
            r.AddError($"{Name(r)} '{v}' is neither 'embedded', 'fashion-mnist' nor an existing folder (of CIFAR-10 batches, IDX files, or images in one sub-folder per class).");
    }
}
