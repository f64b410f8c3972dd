using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace McDit.Torch.Interop;

/// <summary>
/// Reads and writes PyTorch's <c>torch.save</c> format (the zip archive of PyTorch 1.6 and later): <c>NAME/data.pkl</c>
/// (the pickled object), <c>NAME/data/KEY</c> (one record per storage, raw little-endian elements), <c>NAME/version</c>
/// and <c>NAME/byteorder</c>. Reading uses <see cref="RestrictedUnpickler"/>, so no code from the file runs; writing
/// gives files that <c>torch.load(path, weights_only=True)</c> reads.
/// </summary>
/// <remarks>
/// Reading checks before it allocates: the zip's structure, each record's CRC-32, that every storage record holds exactly
/// the bytes its storage declares, and that every tensor lies inside its storage. Every fault is a
/// <see cref="TorchFormatException"/> (or <see cref="UnsafePickleException"/>) that names the file and the part at fault.
/// </remarks>
public static class TorchFile
{
    /// <summary>The largest pickle (<c>data.pkl</c>) accepted: 256 MiB (a DiT-XL/2 training checkpoint's is under 1 MiB).</summary>
    public const long MaxPickleBytes = 256L << 20;

    /// <summary>Loads a <c>.pt</c> file's object with its tensors on the CPU.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="TorchFormatException">The file is not a torch.save archive, or is truncated or damaged.</exception>
    /// <exception cref="UnsafePickleException">The pickle asks for a Python global other than the allowed data constructors.</exception>
    public static TorchFileContent Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"PyTorch file '{path}' does not exist.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Load(stream, path);
    }

    /// <summary>Loads a torch.save archive from a seekable stream (see <see cref="Load(string)"/>).</summary>
    /// <param name="stream">A readable, seekable stream holding the whole archive; it is left open.</param>
    /// <param name="source">Names the data in error messages.</param>
    public static TorchFileContent Load(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek) throw new ArgumentException("Reading a .pt archive needs a seekable stream.", nameof(stream));
        CheckMagic(stream, source);
        ZipArchive zip;
        try { zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true); _ = zip.Entries; }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
        {
            throw new TorchFormatException(source, $"it is not a readable zip archive ({e.Message}); the file is truncated or damaged.", e);
        }
        using (zip)
        {
            var pickleEntry = FindPickle(zip, source, out var prefix);
            var byteOrder = zip.GetEntry(prefix + "byteorder");
            if (byteOrder is not null)
            {
                var order = Encoding.ASCII.GetString(ReadEntry(byteOrder, source, 64)).Trim();
                if (order != "little")
                    throw new TorchFormatException(source, $"its byteorder record says '{order}'; only little-endian files are supported (save it on a little-endian machine).");
            }
            var pickle = ReadEntry(pickleEntry, source, MaxPickleBytes);
            var root = RestrictedUnpickler.Load(pickle, $"{source}, entry '{pickleEntry.FullName}'");

            // Every tensor reference, and a check of each storage against its record, before anything is allocated.
            var refs = new List<TorchTensorRef>();
            Walk(root, o => { if (o is TorchTensorRef r) refs.Add(r); return o; });
            var storages = new Dictionary<string, (TorchStorageRef Storage, ZipArchiveEntry Entry)>(StringComparer.Ordinal);
            foreach (var r in refs)
            {
                var s = r.Storage;
                if (storages.TryGetValue(s.Key, out var known))
                {
                    if (known.Storage.DType != s.DType || known.Storage.ElementCount != s.ElementCount)
                        throw new TorchFormatException(source, $"storage '{s.Key}' is declared twice with different types or sizes; the file is damaged.");
                }
                else
                {
                    var entry = zip.GetEntry($"{prefix}data/{s.Key}")
                        ?? throw new TorchFormatException(source, $"the record '{prefix}data/{s.Key}' of a storage is missing; the file is truncated or damaged.");
                    long bytes = checked(s.ElementCount * ElementSize(s.DType));
                    if (entry.Length != bytes)
                        throw new TorchFormatException(source, $"record '{entry.FullName}' holds {entry.Length:N0} bytes; its storage of {s.ElementCount:N0} {s.DType} elements needs {bytes:N0}. The file is damaged.");
                    CheckEntrySize(entry, stream.Length, source);
                    storages[s.Key] = (s, entry);
                }
                CheckView(r, source);
            }

            TorchBackend.EnsureInitialized();
            var tensors = new List<Tensor>();
            var loaded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var (key, (storage, entry)) in storages) loaded[key] = ReadStorage(entry, storage, source);
                var materialised = Walk(root, o =>
                {
                    if (o is not TorchTensorRef r) return o;
                    var s = loaded[r.Storage.Key];
                    var t = r.Shape.Length == 1 && r.Offset == 0 && r.Shape[0] == s.shape[0] && r.Stride[0] == 1
                        ? s.alias()
                        : s.as_strided(r.Shape, r.Stride, r.Offset).contiguous();
                    tensors.Add(t);
                    return t;
                });
                return new TorchFileContent(materialised, tensors, source);
            }
            catch
            {
                foreach (var t in tensors) t.Dispose();
                throw;
            }
            finally
            {
                foreach (var s in loaded.Values) s.Dispose();
            }
        }
    }

    /// <summary>
    /// Saves <paramref name="root"/> as <c>torch.save</c> does (the zip archive, records aligned to 64 bytes), atomically.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="root">What to save: a state dict (<see cref="IReadOnlyDictionary{TKey, TValue}"/> of tensors, written as an
    /// OrderedDict), a <see cref="PickleDict"/> (nesting such values, lists, tuples, strings, numbers, booleans, None,
    /// <see cref="PickleObject"/> Namespaces) or a tensor. The same tensor object appearing twice is stored once.</param>
    /// <exception cref="ArgumentException">A value cannot be pickled (its type or dtype is not supported).</exception>
    public static void Save(string path, object? root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var writer = new PickleWriter();
        var pickle = writer.Write(root);
        TorchBackend.EnsureInitialized();
        AtomicFile.Write(path, s =>
        {
            var zip = new StoredZipWriter(s, path);
            zip.Add("archive/data.pkl", pickle);
            zip.Add("archive/byteorder", Encoding.ASCII.GetBytes("little"));
            foreach (var (key, tensor) in writer.Storages)
            {
                using var flat = tensor.detach().cpu().contiguous().reshape(-1);
                long length = checked(flat.numel() * ElementSize(flat.dtype));
                zip.Add($"archive/data/{key}", length, sink =>
                {
                    long perChunk = Math.Max(1, (16 << 20) / ElementSize(flat.dtype)), n = flat.numel();
                    for (long i = 0; i < n; i += perChunk)
                    {
                        using var part = flat.narrow(0, i, Math.Min(perChunk, n - i));
                        sink(part.bytes);
                    }
                });
            }
            zip.Add("archive/version", Encoding.ASCII.GetBytes("3\n"));
            zip.Finish();
        });
    }

    // ------------------------------------------------------------------ reading helpers

    static void CheckMagic(Stream stream, string source)
    {
        Span<byte> head = stackalloc byte[4];
        long start = stream.Position;
        int n = stream.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        stream.Position = start;
        if (n < 4) throw new TorchFormatException(source, $"it holds {n} bytes; a torch.save archive is a zip file (the file is truncated or empty).");
        if (head[0] == 'P' && head[1] == 'K') return;
        if (head[0] == 0x80)
            throw new TorchFormatException(source, "it is in the legacy torch.save format (PyTorch before 1.6, or _use_new_zipfile_serialization=False), " +
                "which McDit does not read; load it in PyTorch and save it again with torch.save(obj, path), or as .safetensors.");
        throw new TorchFormatException(source, "it is not a torch.save archive (a zip file starting with 'PK'); expected a .pt/.pth file written by torch.save.");
    }

    static ZipArchiveEntry FindPickle(ZipArchive zip, string source, out string prefix)
    {
        var candidates = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (candidates.Count == 1)
        {
            prefix = candidates[0].FullName[..^"data.pkl".Length];
            return candidates[0];
        }
        if (candidates.Count > 1) throw new TorchFormatException(source, $"it holds {candidates.Count} data.pkl records; a torch.save archive has one.");
        if (zip.Entries.Any(e => e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal)))
            throw new TorchFormatException(source, "it is a TorchScript archive (torch.jit.save), not a torch.save file; save the model's state_dict() with torch.save instead.");
        throw new TorchFormatException(source, "it has no 'NAME/data.pkl' record, so it is not a torch.save archive (or it is truncated).");
    }

    static void CheckEntrySize(ZipArchiveEntry entry, long fileLength, string source)
    {
        if (entry.CompressedLength < 0 || entry.CompressedLength > fileLength || entry.Length < 0 ||
            entry.Length > (1L << 20) + 64 * entry.CompressedLength)
            throw new TorchFormatException(source, $"record '{entry.FullName}' declares {entry.Length:N0} bytes from {entry.CompressedLength:N0} stored; the zip is damaged.");
    }

    static byte[] ReadEntry(ZipArchiveEntry entry, string source, long max)
    {
        if (entry.Length > max) throw new TorchFormatException(source, $"record '{entry.FullName}' holds {entry.Length:N0} bytes; expected at most {max:N0}.");
        CheckEntrySize(entry, long.MaxValue, source);
        var bytes = new byte[entry.Length];
        var crc = new Crc32();
        try
        {
            using var data = entry.Open();
            data.ReadExactly(bytes);
            if (data.Read(new byte[1]) != 0) throw new TorchFormatException(source, $"record '{entry.FullName}' holds more bytes than the zip declares; the file is damaged.");
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException and not TorchFormatException)
        {
            throw new TorchFormatException(source, $"record '{entry.FullName}' cannot be read ({e.Message}); the file is truncated or damaged.", e);
        }
        crc.Append(bytes);
        if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
            throw new TorchFormatException(source, $"record '{entry.FullName}' fails its CRC-32 check; the file is damaged.");
        return bytes;
    }

    static Tensor ReadStorage(ZipArchiveEntry entry, TorchStorageRef storage, string source)
    {
        var t = torch.empty(new[] { storage.ElementCount }, dtype: storage.DType);
        try
        {
            int size = ElementSize(storage.DType);
            var buffer = new byte[(int)Math.Min(Math.Max(entry.Length, 1), 16 << 20) / size * size + size];
            var crc = new Crc32();
            using var data = entry.Open();
            long done = 0, total = storage.ElementCount;
            while (done < total)
            {
                long n = Math.Min(total - done, buffer.Length / size);
                var span = buffer.AsSpan(0, (int)(n * size));
                data.ReadExactly(span);
                crc.Append(span);
                if (storage.DType == ScalarType.Bool)
                    foreach (var b in span)
                        if (b > 1) throw new TorchFormatException(source, $"record '{entry.FullName}' holds the byte {b} in a bool storage; expected 0 or 1.");
                using (var part = t.narrow(0, done, n)) part.bytes = span;
                done += n;
            }
            if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
                throw new TorchFormatException(source, $"record '{entry.FullName}' fails its CRC-32 check; the file is damaged.");
            return t;
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or IOException and not TorchFormatException)
        {
            t.Dispose();
            throw new TorchFormatException(source, $"record '{entry.FullName}' cannot be read ({e.Message}); the file is truncated or damaged.", e);
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    static void CheckView(TorchTensorRef r, string source)
    {
        long numel = 1;
        long last = r.Offset;
        for (int i = 0; i < r.Shape.Length; i++)
        {
            numel = checked(numel * r.Shape[i]);
            if (r.Shape[i] > 0) last = checked(last + (r.Shape[i] - 1) * r.Stride[i]);
        }
        if (numel > 0 && (r.Offset < 0 || last >= r.Storage.ElementCount))
            throw new TorchFormatException(source,
                $"a tensor of shape [{string.Join(", ", r.Shape)}] at offset {r.Offset} reaches element {last} of storage '{r.Storage.Key}', which has {r.Storage.ElementCount}; the file is damaged.");
    }

    internal static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new ArgumentException($"dtype {t} is not supported in .pt files"),
    };

    /// <summary>
    /// Visits every value of an unpickled object once (iteratively: no recursion, cycles visited once) and replaces each
    /// by what <paramref name="map"/> returns for it.
    /// </summary>
    internal static object? Walk(object? root, Func<object?, object?> map)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var work = new Stack<object>();
        root = map(root);
        if (root is not null) work.Push(root);
        while (work.Count > 0)
        {
            var o = work.Pop();
            if (!seen.Add(o)) continue;
            switch (o)
            {
                case PickleDict d:
                    foreach (var k in d.Keys.ToList()) { var v = map(d[k]); d[k] = v; if (v is not null) work.Push(v); }
                    break;
                case PickleObject p:
                    foreach (var k in p.Attributes.Keys.ToList()) { var v = map(p.Attributes[k]); p.Attributes[k] = v; if (v is not null) work.Push(v); }
                    break;
                case PickleTuple t:
                    for (int i = 0; i < t.Items.Count; i++) { var v = map(t.Items[i]); t.Items[i] = v; if (v is not null) work.Push(v); }
                    break;
                case List<object?> l:
                    for (int i = 0; i < l.Count; i++) { var v = map(l[i]); l[i] = v; if (v is not null) work.Push(v); }
                    break;
            }
        }
        return root;
    }
}
