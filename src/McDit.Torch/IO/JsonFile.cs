using System.Text.Json;

namespace McDit.Torch.IO;

/// <summary>
/// Reads the small JSON files McDit writes (config.json, state.json, run.json, manifests) with a size bound and with
/// every failure as one <see cref="InvalidDataException"/> that names the file and the JSON path: malformed JSON,
/// a wrong type, a missing required field, a number that is not an integer or does not fit (1e308 in an int field).
/// </summary>
public static class JsonFile
{
    /// <summary>The largest JSON file read (16 MiB); McDit's own are a few KiB.</summary>
    public const long MaxBytes = 16 << 20;

    /// <summary>Reads and deserialises <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is too large, not valid JSON, or does not fit <typeparamref name="T"/>.</exception>
    public static T Read<T>(string path, JsonSerializerOptions options) where T : class
    {
        byte[] bytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            if (stream.Length > MaxBytes)
                throw new InvalidDataException($"{path} is {stream.Length:N0} bytes; a McDit JSON file is at most {MaxBytes:N0}. The file is damaged or not McDit's.");
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        return Parse<T>(bytes, path, options);
    }

    /// <summary>Deserialises UTF-8 JSON read from <paramref name="source"/> (a file or zip entry, for messages).</summary>
    /// <exception cref="InvalidDataException">The bytes are not valid JSON or do not fit <typeparamref name="T"/>.</exception>
    public static T Parse<T>(ReadOnlySpan<byte> utf8, string source, JsonSerializerOptions options) where T : class
    {
        if (utf8.Length > MaxBytes)
            throw new InvalidDataException($"{source} is {utf8.Length:N0} bytes; a McDit JSON file is at most {MaxBytes:N0}.");
        try
        {
            return JsonSerializer.Deserialize<T>(utf8, options)
                ?? throw new InvalidDataException($"{source} holds null; expected a JSON object.");
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } p ? $" at {p}" : "";
            throw new InvalidDataException($"{source} is not a valid {typeof(T).Name}{where}: {FirstSentence(e.Message)}", e);
        }
        catch (Exception e) when (e is FormatException or OverflowException or InvalidOperationException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"{source} is not a valid {typeof(T).Name}: {FirstSentence(e.Message)}", e);
        }
    }

    // System.Text.Json appends "Path: $.x | LineNumber: 0 | BytePositionInLine: 12." to its messages; the path is given above.
    static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).ReplaceLineEndings(" ").Trim();
    }
}
