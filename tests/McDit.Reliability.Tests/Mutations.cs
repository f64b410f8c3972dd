using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;

namespace McDit.Reliability.Tests;

/// <summary>The ways a file gets damaged: bit flips, truncation, and targeted edits of safetensors headers, zips and JSON.</summary>
internal static class Mutations
{
    public static byte[] FlipBits(byte[] data, Random random, int bits)
    {
        var copy = (byte[])data.Clone();
        for (int i = 0; i < bits; i++) copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
        return copy;
    }

    public static byte[] Truncate(byte[] data, int length) => data[..Math.Clamp(length, 0, data.Length - 1)];

    // ------------------------------------------------------------------ safetensors

    public static (JsonObject Header, byte[] Data) SplitSafeTensors(byte[] file)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, (int)n))!.AsObject();
        return (header, file[(8 + (int)n)..]);
    }

    public static byte[] JoinSafeTensors(JsonObject header, byte[] data) => JoinSafeTensors(Encoding.UTF8.GetBytes(header.ToJsonString()), data);

    public static byte[] JoinSafeTensors(byte[] header, byte[] data)
    {
        var prefix = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, header.Length);
        return prefix.Concat(header).Concat(data).ToArray();
    }

    /// <summary>Edits the header's JSON; the data buffer is kept as it is.</summary>
    public static byte[] EditHeader(byte[] file, Action<JsonObject> edit)
    {
        var (header, data) = SplitSafeTensors(file);
        edit(header);
        return JoinSafeTensors(header, data);
    }

    /// <summary>The tensors of a header (not the metadata), largest first.</summary>
    public static List<(string Name, JsonObject Entry)> Tensors(JsonObject header) =>
        header.Where(kv => kv.Key != "__metadata__").Select(kv => (kv.Key, kv.Value!.AsObject()))
            .OrderByDescending(t => t.Item2["shape"]!.AsArray().Aggregate(1L, (a, d) => a * d!.GetValue<long>())).ToList();

    public static byte[] SetHeaderLength(byte[] file, ulong length)
    {
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, length);
        return copy;
    }

    /// <summary>Writes <paramref name="value"/> as float32 over element <paramref name="index"/> of tensor <paramref name="name"/>.</summary>
    public static byte[] SetFloat(byte[] file, string name, long index, float value)
    {
        var (header, _) = SplitSafeTensors(file);
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        long begin = header[name]!["data_offsets"]![0]!.GetValue<long>();
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteSingleLittleEndian(copy.AsSpan((int)(8 + n + begin + 4 * index)), value);
        return copy;
    }

    /// <summary>Applies <paramref name="edit"/> to the raw bytes of tensor <paramref name="name"/>.</summary>
    public static byte[] EditTensorBytes(byte[] file, string name, Action<Span<byte>> edit)
    {
        var (header, _) = SplitSafeTensors(file);
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        var offsets = header[name]!["data_offsets"]!.AsArray();
        long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
        var copy = (byte[])file.Clone();
        edit(copy.AsSpan((int)(8 + n + begin), (int)(end - begin)));
        return copy;
    }

    // ------------------------------------------------------------------ zips

    public static List<(string Name, byte[] Data)> ReadZip(string path)
    {
        var entries = new List<(string, byte[])>();
        using var zip = ZipFile.OpenRead(path);
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            entries.Add((e.FullName, ms.ToArray()));
        }
        return entries;
    }

    public static void WriteZip(string path, IEnumerable<(string Name, byte[] Data)> entries)
    {
        if (File.Exists(path)) File.Delete(path);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, data) in entries)
        {
            using var s = zip.CreateEntry(name).Open();
            s.Write(data);
        }
    }

    /// <summary>Offsets of the central-directory record and the local header of each entry (the zips here have no comments or extras).</summary>
    public static List<(string Name, int Central, int Local)> ZipLayout(byte[] zip)
    {
        int eocd = zip.Length - 22;
        int count = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(eocd + 10));
        int p = (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(eocd + 16));
        var result = new List<(string, int, int)>();
        for (int i = 0; i < count; i++)
        {
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(p + 28));
            int extra = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(p + 30));
            int comment = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(p + 32));
            int local = (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(p + 42));
            result.Add((Encoding.UTF8.GetString(zip, p + 46, nameLength), p, local));
            p += 46 + nameLength + extra + comment;
        }
        return result;
    }

    public static byte[] Patch32(byte[] data, int offset, uint value)
    {
        var copy = (byte[])data.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    public static byte[] Xor(byte[] data, int offset, byte mask)
    {
        var copy = (byte[])data.Clone();
        copy[offset] ^= mask;
        return copy;
    }

    // ------------------------------------------------------------------ JSON

    public static byte[] EditJson(byte[] json, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        edit(node);
        return Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>Replaces the text of a JSON number field by raw text (for values JsonNode cannot hold, such as 1e400).</summary>
    public static byte[] RawJsonValue(byte[] json, string field, string raw)
    {
        var text = Encoding.UTF8.GetString(json);
        var marker = $"\"{field}\":";
        int i = text.IndexOf(marker, StringComparison.Ordinal);
        if (i < 0) throw new ArgumentException($"no field {field}");
        int start = i + marker.Length;
        while (text[start] == ' ') start++;
        int end = start;
        while (end < text.Length && text[end] is not (',' or '}' or '\n' or '\r')) end++;
        return Encoding.UTF8.GetBytes(text[..start] + raw + text[end..]);
    }
}
