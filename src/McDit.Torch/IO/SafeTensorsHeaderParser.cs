using System.Text;
using System.Text.Json;

namespace McDit.Torch.IO;

/// <summary>Parses and validates a safetensors JSON header against the size of the data buffer that follows it.</summary>
internal static class SafeTensorsHeaderParser
{
    /// <summary>The name of the reserved header entry that holds string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Parses <paramref name="json"/>; throws <see cref="SafeTensorsFormatException"/> on any fault.</summary>
    /// <param name="json">The header bytes (exactly the length the prefix gave).</param>
    /// <param name="dataLength">Bytes available after the header.</param>
    /// <param name="source">The file path or source name, for messages.</param>
    public static SafeTensorsHeader Parse(byte[] json, long dataLength, string source)
    {
        try { StrictUtf8.GetCharCount(json); }
        catch (DecoderFallbackException e)
        {
            throw new SafeTensorsFormatException(source, null,
                $"expected the {json.Length}-byte header to be UTF-8 text, found an invalid byte sequence.", e);
        }

        var entries = new List<SafeTensorsEntry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        string? current = null;
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(source, null, $"expected the header to be a JSON object, found {Kind(root)}.");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in root.EnumerateObject())
            {
                var name = property.Name;
                if (name == MetadataKey)
                {
                    if (sawMetadata)
                        throw new SafeTensorsFormatException(source, null, $"expected at most one \"{MetadataKey}\" entry, found it twice.");
                    sawMetadata = true;
                    ReadMetadata(property.Value, metadata, source);
                    continue;
                }
                current = name;
                if (name.Length == 0)
                    throw new SafeTensorsFormatException(source, name, "expected a non-empty tensor name.");
                if (!seen.Add(name))
                    throw new SafeTensorsFormatException(source, name, "expected unique tensor names, found this name twice.");
                entries.Add(ReadEntry(name, property.Value, dataLength, source));
                current = null;
            }
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(source, current, $"expected the header to be valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            // For example an escaped lone surrogate that cannot become a .NET string.
            throw new SafeTensorsFormatException(source, current, $"expected the header's strings to be valid text: {e.Message}", e);
        }

        CheckCoverage(entries, dataLength, source);
        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return new SafeTensorsHeader(source, entries, metadata, json.LongLength, dataLength);
    }

    static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(source, null, $"expected \"{MetadataKey}\" to be an object of strings, found {Kind(value)}.");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(source, null,
                    $"expected \"{MetadataKey}\" value \"{Clip(item.Name)}\" to be a string, found {Kind(item.Value)}.");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new SafeTensorsFormatException(source, null,
                    $"expected unique \"{MetadataKey}\" keys, found \"{Clip(item.Name)}\" twice.");
        }
    }

    static SafeTensorsEntry ReadEntry(string name, JsonElement value, long dataLength, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(source, name,
                $"expected an object with \"dtype\", \"shape\" and \"data_offsets\", found {Kind(value)}.");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var field in value.EnumerateObject())
        {
            ref JsonElement? slot = ref dtypeEl;
            switch (field.Name)
            {
                case "dtype": slot = ref dtypeEl; break;
                case "shape": slot = ref shapeEl; break;
                case "data_offsets": slot = ref offsetsEl; break;
                default:
                    throw new SafeTensorsFormatException(source, name,
                        $"expected only \"dtype\", \"shape\" and \"data_offsets\", found field \"{Clip(field.Name)}\".");
            }
            if (slot is not null)
                throw new SafeTensorsFormatException(source, name, $"expected one \"{field.Name}\" field, found it twice.");
            slot = field.Value;
        }
        if (dtypeEl is null || shapeEl is null || offsetsEl is null)
            throw new SafeTensorsFormatException(source, name,
                $"expected fields \"dtype\", \"shape\" and \"data_offsets\", missing \"{(dtypeEl is null ? "dtype" : shapeEl is null ? "shape" : "data_offsets")}\".");

        // dtype
        if (dtypeEl.Value.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(source, name, $"expected \"dtype\" to be a string, found {Kind(dtypeEl.Value)}.");
        var dtype = dtypeEl.Value.GetString()!;
        if (!SafeTensorsDTypes.TryParse(dtype, out var scalarType, out var elementSize))
            throw new SafeTensorsFormatException(source, name,
                $"expected \"dtype\" to be one of {SafeTensorsDTypes.SupportedNames}, found \"{Clip(dtype)}\".");

        // shape
        if (shapeEl.Value.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(source, name, $"expected \"shape\" to be an array of integers, found {Kind(shapeEl.Value)}.");
        var shape = new long[shapeEl.Value.GetArrayLength()];
        int i = 0;
        long count = 1, strideExtent = 1;
        foreach (var d in shapeEl.Value.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw new SafeTensorsFormatException(source, name,
                    $"expected \"shape\" entries to be non-negative integers, found {Clip(d.GetRawText())} at index {i}.");
            shape[i++] = dim;
            try
            {
                count = checked(count * dim);
                // Contiguous strides multiply the sizes (zeros counted as 1); they too must fit in 64 bits.
                strideExtent = checked(strideExtent * Math.Max(dim, 1));
            }
            catch (OverflowException)
            {
                throw new SafeTensorsFormatException(source, name,
                    $"expected a shape whose element count fits in 64 bits, found [{Clip(string.Join(", ", shape.Take(i)))}...].");
            }
        }

        // data_offsets
        if (offsetsEl.Value.ValueKind != JsonValueKind.Array || offsetsEl.Value.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(source, name,
                $"expected \"data_offsets\" to be [begin, end], found {Clip(offsetsEl.Value.GetRawText())}.");
        var begin = Offset(offsetsEl.Value[0], name, source);
        var end = Offset(offsetsEl.Value[1], name, source);
        if (begin > end)
            throw new SafeTensorsFormatException(source, name, $"expected \"data_offsets\" begin ≤ end, found [{begin}, {end}].");
        if (end > dataLength)
            throw new SafeTensorsFormatException(source, name,
                $"expected \"data_offsets\" within the {dataLength}-byte data buffer, found [{begin}, {end}].");
        long bytes;
        try { bytes = checked(count * elementSize); }
        catch (OverflowException)
        {
            throw new SafeTensorsFormatException(source, name, $"expected a byte size that fits in 64 bits for {count} {dtype} elements.");
        }
        if (bytes != end - begin)
            throw new SafeTensorsFormatException(source, name,
                $"expected {bytes} bytes ({count} {dtype} elements of shape [{Clip(string.Join(", ", shape))}]), " +
                $"found data_offsets [{begin}, {end}] spanning {end - begin} bytes.");
        return new SafeTensorsEntry(name, dtype, scalarType, elementSize, shape, count, begin, end);
    }

    static long Offset(JsonElement e, string name, string source)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var v) || v < 0)
            throw new SafeTensorsFormatException(source, name,
                $"expected \"data_offsets\" entries to be non-negative integers, found {Clip(e.GetRawText())}.");
        return v;
    }

    /// <summary>The tensors, sorted by offsets, must tile the data buffer exactly: no overlap, no hole, no tail.</summary>
    static void CheckCoverage(List<SafeTensorsEntry> entries, long dataLength, string source)
    {
        var ordered = entries.OrderBy(e => e.DataBegin).ThenBy(e => e.DataEnd).ToList();
        long expected = 0;
        SafeTensorsEntry? previous = null;
        foreach (var e in ordered)
        {
            if (e.DataBegin < expected)
                throw new SafeTensorsFormatException(source, e.Name,
                    $"expected data_offsets not to overlap, found [{e.DataBegin}, {e.DataEnd}] overlapping tensor '{previous!.Name}' [{previous.DataBegin}, {previous.DataEnd}].");
            if (e.DataBegin > expected)
                throw new SafeTensorsFormatException(source, e.Name,
                    $"expected the data to start at offset {expected} (tensors must cover the buffer without holes), found [{e.DataBegin}, {e.DataEnd}].");
            expected = e.DataEnd;
            previous = e;
        }
        if (expected != dataLength)
            throw new SafeTensorsFormatException(source, null,
                $"expected the tensors to cover the {dataLength}-byte data buffer exactly, but they end at byte {expected} ({dataLength - expected} trailing bytes).");
    }

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    static string Clip(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
