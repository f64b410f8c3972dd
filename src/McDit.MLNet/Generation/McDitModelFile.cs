using System.IO.Compression;
using System.IO.Hashing;
using System.Reflection;
using McDit.MLNet.Internal;
using McDit.Torch.IO;
using McDit.Torch.Runtime;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace McDit.MLNet.Generation;

/// <summary>
/// Model zips (<c>MLContext.Model.Save</c> / <c>Load</c>) made reliable: saving is atomic and deterministic (the same
/// model gives the same bytes: ML.NET's per-entry timestamps are fixed), and loading first verifies the whole zip
/// (every entry's CRC-32 and size, sizes bounded by the file's) and reports any failure as one exception that names the
/// file and the entry, instead of ML.NET's <see cref="TargetInvocationException"/>.
/// </summary>
public static class McDitModelFile
{
    /// <summary>The most entries a model zip may have.</summary>
    public const int MaxEntries = 10_000;
    /// <summary>An entry may expand to at most this many times its compressed size (plus 1 MiB): a bound far above what
    /// model weights and JSON reach, so decompressing a zip allocates at most in proportion to the file.</summary>
    public const int MaxExpansion = 64;

    /// <summary>
    /// Saves <paramref name="model"/> like <c>mlContext.Model.Save</c>, but atomically (the file is replaced only once
    /// complete) and deterministically (entries carry a fixed time, 1980-01-01 00:00).
    /// </summary>
    public static void Save(MLContext mlContext, ITransformer model, DataViewSchema? inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        AtomicFile.WriteVia(path, temp =>
        {
            mlContext.Model.Save(model, inputSchema, temp);
            ZipTimestamps.Normalize(temp);
        });
    }

    /// <summary>
    /// Checks a model zip without loading it: a readable zip, at most <see cref="MaxEntries"/> entries, each entry's
    /// declared size within <see cref="MaxExpansion"/> times its compressed size, and each entry decompressing to exactly
    /// its declared size with the CRC-32 the zip records.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The zip is damaged; the message names the file and the entry.</exception>
    public static void Verify(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        ZipArchive archive;
        IReadOnlyList<ZipArchiveEntry> entries;
        try
        {
            archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            entries = archive.Entries; // the central directory is read here
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IOException)
        {
            throw new InvalidDataException($"{path} is not a readable zip file ({e.Message}); it is truncated or damaged: save the model again, or restore the file from a copy.", e);
        }
        using (archive)
        {
            if (entries.Count > MaxEntries)
                throw new InvalidDataException($"{path} has {entries.Count:N0} entries; a model zip has at most {MaxEntries:N0}.");
            var buffer = new byte[1 << 16];
            foreach (var entry in entries)
            {
                string where = $"{path}, entry '{entry.FullName}'";
                if (entry.CompressedLength < 0 || entry.CompressedLength > stream.Length || entry.Length < 0 ||
                    entry.Length > (1L << 20) + MaxExpansion * entry.CompressedLength)
                    throw new InvalidDataException($"{where}: declares {entry.Length:N0} bytes from {entry.CompressedLength:N0} compressed; the zip is damaged: save the model again, or restore the file from a copy.");
                var crc = new Crc32();
                long read = 0;
                try
                {
                    using var data = entry.Open();
                    int n;
                    while ((n = data.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        read += n;
                        if (read > entry.Length) break;
                        crc.Append(buffer.AsSpan(0, n));
                    }
                }
                catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
                {
                    throw new InvalidDataException($"{where} cannot be decompressed ({e.Message}); the zip is damaged: save the model again, or restore the file from a copy.", e);
                }
                if (read != entry.Length)
                    throw new InvalidDataException($"{where}: holds {(read > entry.Length ? "more than " : "")}{read:N0} bytes, the zip declares {entry.Length:N0}; the zip is damaged: save the model again, or restore the file from a copy.");
                if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
                    throw new InvalidDataException($"{where} fails its CRC-32 check; the zip is damaged: save the model again, or restore the file from a copy.");
            }
        }
    }

    /// <summary>
    /// Loads a model zip like <c>mlContext.Model.Load</c> after <see cref="Verify"/>; any failure is an exception that
    /// names the file and (where the fault is in one) the entry, not a <see cref="TargetInvocationException"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The zip or a model in it is damaged or not loadable.</exception>
    public static ITransformer Load(MLContext mlContext, string path, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        Verify(path);
        try
        {
            return mlContext.Model.Load(path, out inputSchema);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var inner = Unwrap(e);
            // The file itself was just read: a missing "file" now is a loader or assembly the zip names (damaged Model.key).
            if (inner is OutOfMemoryException or OperationCanceledException or UnauthorizedAccessException)
                throw inner;
            var message = inner.Message.ReplaceLineEndings(" ");
            throw new InvalidDataException(message.Contains(path, StringComparison.Ordinal) ? message : $"{path}: {message}", inner);
        }
    }

    /// <summary>Loads a model zip (see <see cref="Load"/>) and returns its McDit generator.</summary>
    /// <param name="mlContext">The context to load into.</param>
    /// <param name="path">The model zip.</param>
    /// <param name="device">Where to put the network (cpu, cuda, cuda:N, auto); null keeps the zip's own choice.</param>
    /// <exception cref="InvalidDataException">The zip is damaged or holds no McDit generator.</exception>
    public static McDitModel LoadGenerator(MLContext mlContext, string path, string? device = null)
    {
        var target = device is null ? null : TorchBackend.ResolveDevice(device);
        var model = Find(Load(mlContext, path, out _))
            ?? throw new InvalidDataException($"{path} holds no McDit generator (McDitModel); it is another ML.NET model.");
        if (target is not null) model.MoveTo(target);
        return model;
    }

    /// <summary>The innermost meaningful exception: reflection and type-initialisation wrappers removed.</summary>
    internal static Exception Unwrap(Exception e)
    {
        while (e is TargetInvocationException or TypeInitializationException or AggregateException { InnerExceptions.Count: 1 } && e.InnerException is not null)
            e = e.InnerException;
        return e;
    }

    static McDitModel? Find(ITransformer model) => model switch
    {
        McDitModel m => m,
        TransformerChain<ITransformer> chain => chain.Reverse().Select(Find).FirstOrDefault(m => m is not null),
        _ => null,
    };
}
