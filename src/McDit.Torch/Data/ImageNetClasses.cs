using System.Globalization;

namespace McDit.Torch.Data;

/// <summary>
/// The 1,000 class names of ImageNet-1k in label order (0 tench … 207 golden retriever … 360 otter … 999 toilet tissue),
/// embedded in this assembly; DiT's and MaskDiT's ImageNet models use these labels.
/// </summary>
public static class ImageNetClasses
{
    /// <summary>Number of classes, 1000.</summary>
    public const int Count = 1000;

    static readonly Lazy<string[]> All = new(() =>
    {
        using var stream = typeof(ImageNetClasses).Assembly.GetManifestResourceStream("McDit.Torch.Data.Embedded.imagenet-classes.txt")
            ?? throw new InvalidOperationException("The embedded resource imagenet-classes.txt is missing from McDit.Torch.dll.");
        using var reader = new StreamReader(stream);
        var names = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length != Count) throw new InvalidOperationException($"The embedded ImageNet class list has {names.Length} names; expected {Count}.");
        return names;
    });

    /// <summary>The names, index = label.</summary>
    public static IReadOnlyList<string> Names => All.Value;

    /// <summary>
    /// Finds a class by index or name in <paramref name="names"/>: a whole number in range, or a name compared ignoring
    /// case, spaces, hyphens and underscores ("golden retriever", "Golden_Retriever"). Null when nothing matches.
    /// </summary>
    public static int? Find(string text, IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(names);
        var t = text.Trim();
        if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var index)) return index < names.Count ? index : null;
        var key = Normalize(t);
        for (int i = 0; i < names.Count; i++)
            if (Normalize(names[i]) == key) return i;
        return null;
    }

    /// <summary>Up to <paramref name="count"/> names that contain <paramref name="text"/> (ignoring case), for "did you mean" messages.</summary>
    public static IReadOnlyList<string> Suggest(string text, IReadOnlyList<string> names, int count = 5)
    {
        var key = Normalize(text);
        return key.Length == 0 ? Array.Empty<string>() : names.Where(n => Normalize(n).Contains(key, StringComparison.Ordinal)).Take(count).ToList();
    }

    static string Normalize(string s) =>
        new(s.Where(c => c is not (' ' or '-' or '_')).Select(char.ToLowerInvariant).ToArray());
}
