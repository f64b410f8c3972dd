using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.IO;

/// <summary>
/// Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}</c>),
/// then the data buffer, each tensor C-contiguous and little-endian at its offsets relative to the buffer start.
/// </summary>
/// <remarks>
/// Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL. Reading validates the whole header
/// against the size of the input before any tensor is allocated, so a malformed or hostile file costs at most
/// its own size in memory and fails with <see cref="SafeTensorsFormatException"/>. Writing is deterministic:
/// header keys are sorted (ordinal), the data is laid out by element size (largest first) and then by name, so
/// every tensor is aligned to its element size, and the header is padded with spaces to a multiple of 8 bytes.
/// </remarks>
public static class SafeTensors
{
    /// <summary>The largest JSON header accepted when reading (100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    /// <summary>Bytes moved between a stream and a tensor at a time.</summary>
    internal const int DefaultChunkBytes = 1 << 24;

    // ---------------------------------------------------------------- writing

    /// <summary>
    /// Saves <paramref name="tensors"/> (and optional string metadata) to <paramref name="path"/> atomically
    /// (see <see cref="AtomicFile"/>): the file is replaced only once it has been written completely.
    /// </summary>
    /// <param name="path">The file to create or replace; its folder is created when missing.</param>
    /// <param name="tensors">Tensors by name, on any device, contiguous or not; they are not modified.</param>
    /// <param name="metadata">Free-form string metadata stored as <c>__metadata__</c>, or null for none.</param>
    /// <exception cref="ArgumentException">A name is empty or reserved, a dtype is unsupported, or metadata holds a null.</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var layout = Plan(tensors, metadata);
        AtomicFile.Write(path, s => WriteCore(s, layout, DefaultChunkBytes));
    }

    /// <summary>Writes <paramref name="tensors"/> in safetensors format to <paramref name="stream"/>, from its current position.</summary>
    /// <param name="stream">A writable stream; it is left open.</param>
    /// <param name="tensors">Tensors by name, on any device, contiguous or not; they are not modified.</param>
    /// <param name="metadata">Free-form string metadata stored as <c>__metadata__</c>, or null for none.</param>
    /// <exception cref="ArgumentException">A name is empty or reserved, a dtype is unsupported, or metadata holds a null.</exception>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        WriteCore(stream, Plan(tensors, metadata), DefaultChunkBytes);
    }

    /// <summary>Returns <paramref name="tensors"/> in safetensors format as a byte array.</summary>
    /// <param name="tensors">Tensors by name, on any device, contiguous or not; they are not modified.</param>
    /// <param name="metadata">Free-form string metadata stored as <c>__metadata__</c>, or null for none.</param>
    /// <exception cref="ArgumentException">A name is empty or reserved, a dtype is unsupported, or metadata holds a null.</exception>
    public static byte[] ToBytes(IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) => ToBytes(tensors, metadata, DefaultChunkBytes);

    internal static byte[] ToBytes(IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata, int chunkBytes)
    {
        using var ms = new MemoryStream();
        WriteCore(ms, Plan(tensors, metadata), chunkBytes);
        return ms.ToArray();
    }

    sealed record Planned(string Name, Tensor Tensor, string DType, int ElementSize, long[] Shape, long ElementCount)
    {
        public long Begin { get; set; }
        public long End { get; set; }
    }

    sealed record Layout(byte[] Header, List<Planned> DataOrder);

    /// <summary>Checks the input and computes the header and the data order, before anything is written.</summary>
    static Layout Plan(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Safetensors I/O needs a little-endian machine.");
        var planned = new List<Planned>(tensors.Count);
        foreach (var (name, tensor) in tensors)
        {
            if (string.IsNullOrEmpty(name))
                throw new ArgumentException("Tensor names must be non-empty.", nameof(tensors));
            if (name == SafeTensorsHeaderParser.MetadataKey)
                throw new ArgumentException($"'{name}' is reserved for metadata; it cannot name a tensor.", nameof(tensors));
            if (tensor is null)
                throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            if (!SafeTensorsDTypes.TryGetName(tensor.dtype, out var dtype, out var size))
                throw new ArgumentException(
                    $"Tensor '{name}' has dtype {tensor.dtype}; safetensors here supports {SafeTensorsDTypes.SupportedNames}.",
                    nameof(tensors));
            planned.Add(new Planned(name, tensor, dtype, size, tensor.shape, tensor.numel()));
        }
        if (metadata is not null)
            foreach (var (k, v) in metadata)
                if (k is null || v is null)
                    throw new ArgumentException($"Metadata entry '{k}' has a null value; expected strings.", nameof(metadata));

        // Largest elements first, then by name: every tensor starts at a multiple of its element size.
        var dataOrder = planned.OrderByDescending(p => p.ElementSize).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
        long offset = 0;
        foreach (var p in dataOrder)
        {
            p.Begin = offset;
            offset = checked(offset + checked(p.ElementCount * p.ElementSize));
            p.End = offset;
        }

        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(SafeTensorsHeaderParser.MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var p in planned.OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                w.WriteStartObject(p.Name);
                w.WriteString("dtype", p.DType);
                w.WriteStartArray("shape");
                foreach (var d in p.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(p.Begin);
                w.WriteNumberValue(p.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var padded = (json.Length + 7) / 8 * 8;
        while (json.Length < padded) json.WriteByte((byte)' ');
        return new Layout(json.ToArray(), dataOrder);
    }

    static void WriteCore(Stream stream, Layout layout, int chunkBytes)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)layout.Header.Length);
        stream.Write(prefix);
        stream.Write(layout.Header);
        if (layout.DataOrder.Count == 0) return;
        TorchBackend.EnsureInitialized();
        foreach (var p in layout.DataOrder)
        {
            if (p.ElementCount == 0) continue;
            using var scope = NewDisposeScope();
            var flat = p.Tensor.detach().cpu().contiguous().reshape(-1);
            long perChunk = Math.Max(1, chunkBytes / p.ElementSize);
            for (long i = 0; i < p.ElementCount; i += perChunk)
            {
                long n = Math.Min(perChunk, p.ElementCount - i);
                var part = n == p.ElementCount ? flat : flat.narrow(0, i, n);
                stream.Write(part.bytes);
            }
        }
    }

    // ---------------------------------------------------------------- reading

    /// <summary>Loads every tensor and the metadata of a safetensors file.</summary>
    /// <param name="path">The file to read.</param>
    /// <param name="device">Where to put the tensors; null (or CPU) keeps them on the CPU.</param>
    /// <returns>The content; dispose it to free the tensors.</returns>
    /// <exception cref="SafeTensorsFormatException">The file is malformed; the message names the file, the tensor and the fault.</exception>
    public static SafeTensorsContent Load(string path, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return LoadCore(fs, path, device, DefaultChunkBytes);
    }

    /// <summary>Loads every tensor and the metadata of safetensors data held in memory.</summary>
    /// <param name="bytes">The complete file content.</param>
    /// <param name="sourceName">A name for the data, used in error messages.</param>
    /// <param name="device">Where to put the tensors; null (or CPU) keeps them on the CPU.</param>
    /// <returns>The content; dispose it to free the tensors.</returns>
    /// <exception cref="SafeTensorsFormatException">The data is malformed; the message names the source, the tensor and the fault.</exception>
    public static SafeTensorsContent Load(byte[] bytes, string sourceName, Device? device = null) =>
        Load(bytes, sourceName, device, DefaultChunkBytes);

    internal static SafeTensorsContent Load(byte[] bytes, string sourceName, Device? device, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var ms = new MemoryStream(bytes, writable: false);
        return LoadCore(ms, sourceName ?? "bytes", device, chunkBytes);
    }

    /// <summary>
    /// Loads every tensor and the metadata of safetensors data read from <paramref name="stream"/>, from its current
    /// position to its end. A stream that cannot seek is first read completely into memory.
    /// </summary>
    /// <param name="stream">A readable stream; it is left open.</param>
    /// <param name="sourceName">A name for the data, used in error messages.</param>
    /// <param name="device">Where to put the tensors; null (or CPU) keeps them on the CPU.</param>
    /// <returns>The content; dispose it to free the tensors.</returns>
    /// <exception cref="SafeTensorsFormatException">The data is malformed; the message names the source, the tensor and the fault.</exception>
    public static SafeTensorsContent Load(Stream stream, string sourceName, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        sourceName ??= "stream";
        if (stream.CanSeek) return LoadCore(stream, sourceName, device, DefaultChunkBytes);
        // Memory grows only with the bytes that actually arrive, never with what a header claims.
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        copy.Position = 0;
        return LoadCore(copy, sourceName, device, DefaultChunkBytes);
    }

    /// <summary>Reads and validates the header of a safetensors file (names, dtypes, shapes, offsets, metadata) without reading the tensor data.</summary>
    /// <param name="path">The file to read.</param>
    /// <exception cref="SafeTensorsFormatException">The file is malformed; the message names the file, the tensor and the fault.</exception>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
        return ReadHeaderCore(fs, path);
    }

    /// <summary>Reads and validates the header of safetensors data from a seekable stream, from its current position, without reading the tensor data.</summary>
    /// <param name="stream">A readable, seekable stream; it is left open, positioned at the start of the data buffer.</param>
    /// <param name="sourceName">A name for the data, used in error messages.</param>
    /// <exception cref="SafeTensorsFormatException">The data is malformed; the message names the source, the tensor and the fault.</exception>
    public static SafeTensorsHeader ReadHeader(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
            throw new ArgumentException("Reading a header needs a seekable stream (its length bounds the data buffer).", nameof(stream));
        return ReadHeaderCore(stream, sourceName ?? "stream");
    }

    static SafeTensorsHeader ReadHeaderCore(Stream s, string source)
    {
        long total = s.Length - s.Position;
        if (total < 8)
            throw new SafeTensorsFormatException(source, null, $"expected at least 8 bytes (the header length), found {Math.Max(total, 0)}.");
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(s, prefix, source, null);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > (ulong)MaxHeaderLength)
            throw new SafeTensorsFormatException(source, null, $"expected a header length of at most {MaxHeaderLength} bytes, found {n}.");
        if (n > (ulong)(total - 8))
            throw new SafeTensorsFormatException(source, null,
                $"expected a header length of at most the {total - 8} bytes that follow the prefix, found {n}.");
        var json = new byte[(int)n];
        ReadExactly(s, json, source, null);
        return SafeTensorsHeaderParser.Parse(json, total - 8 - (long)n, source);
    }

    static SafeTensorsContent LoadCore(Stream s, string source, Device? device, int chunkBytes)
    {
        var header = ReadHeaderCore(s, source);
        TorchBackend.EnsureInitialized();
        long dataStart = s.Position;
        var byOffset = header.Tensors.OrderBy(e => e.DataBegin).ThenBy(e => e.DataEnd).ToList();
        long largest = byOffset.Count == 0 ? 0 : byOffset.Max(e => e.ByteLength);
        var buffer = new byte[(int)Math.Clamp(largest, 8, Math.Max(chunkBytes, 8))];
        bool move = device is not null && device.type != DeviceType.CPU;

        using var scope = NewDisposeScope();
        var loaded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var e in byOffset)
        {
            var t = torch.empty(e.ShapeArray, dtype: e.ScalarType);
            if (e.ElementCount > 0)
            {
                if (s.Position != dataStart + e.DataBegin) s.Position = dataStart + e.DataBegin;
                Fill(t, e, s, buffer, source);
            }
            loaded[e.Name] = move ? t.to(device!) : t;
        }
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var e in header.Tensors) result[e.Name] = loaded[e.Name].MoveToOuterDisposeScope();
        return new SafeTensorsContent(header, result);
    }

    static void Fill(Tensor t, SafeTensorsEntry e, Stream s, byte[] buffer, string source)
    {
        using var flat = t.view(-1);
        long perChunk = Math.Max(1, buffer.Length / e.ElementSize);
        for (long i = 0; i < e.ElementCount; i += perChunk)
        {
            long n = Math.Min(perChunk, e.ElementCount - i);
            var span = buffer.AsSpan(0, checked((int)(n * e.ElementSize)));
            ReadExactly(s, span, source, e.Name);
            if (e.ScalarType == ScalarType.Bool)
                for (int k = 0; k < span.Length; k++)
                    if (span[k] > 1)
                        throw new SafeTensorsFormatException(source, e.Name,
                            $"expected BOOL bytes to be 0 or 1, found {span[k]} at element {i + k}.");
            if (n == e.ElementCount) flat.bytes = span;
            else
            {
                using var part = flat.narrow(0, i, n);
                part.bytes = span;
            }
        }
    }

    static void ReadExactly(Stream s, Span<byte> into, string source, string? tensor)
    {
        try { s.ReadExactly(into); }
        catch (EndOfStreamException e)
        {
            throw new SafeTensorsFormatException(source, tensor, $"expected {into.Length} more bytes, but the data ended early.", e);
        }
    }
}
