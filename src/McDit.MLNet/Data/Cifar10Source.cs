using System.Collections.ObjectModel;
using Microsoft.Win32.SafeHandles;

namespace McDit.MLNet.Data;

/// <summary>Which part of CIFAR-10 to load.</summary>
public enum Cifar10Split
{
    /// <summary>The training images: <c>data_batch_1.bin</c> … <c>data_batch_5.bin</c> (50,000 images).</summary>
    Train,
    /// <summary>The test images: <c>test_batch.bin</c> (10,000 images).</summary>
    Test,
}

/// <summary>
/// CIFAR-10 in its binary version (<c>cifar-10-binary.tar.gz</c>): each file is a sequence of 3073-byte records,
/// one label byte (0–9) then 3072 pixel bytes, the red, green and blue 32×32 planes, rows top to bottom.
/// Records are read from the files on demand (positional reads), never held in memory as a whole.
/// </summary>
sealed class Cifar10Source : ImageRowSource
{
    public const int Side = 32;
    public const int ImageBytes = 3 * Side * Side;
    public const int RecordBytes = 1 + ImageBytes;

    /// <summary>The standard class names, used when <c>batches.meta.txt</c> is missing or does not hold 10 names.</summary>
    public static ReadOnlyCollection<string> StandardClassNames { get; } = Array.AsReadOnly(new[]
    {
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    });

    readonly string[] _files;
    readonly int[] _starts; // first row of each file; _starts[^1] = total
    readonly int _count;

    Cifar10Source(string[] files, int[] starts, IReadOnlyList<string> classNames)
        : base(3, Side, Side, classNames)
    {
        _files = files;
        _starts = starts;
        _count = starts[^1];
    }

    public override int Count => _count;
    public IReadOnlyList<string> Files => _files;

    /// <summary>
    /// Opens a folder (the extracted <c>cifar-10-batches-bin</c>, or a folder holding it) for a split, or one batch file.
    /// Every file's length is checked to be a positive multiple of 3073 bytes.
    /// </summary>
    public static Cifar10Source Open(string folderOrFile, Cifar10Split split)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folderOrFile);
        string[] files;
        string folder;
        if (File.Exists(folderOrFile))
        {
            files = new[] { folderOrFile };
            folder = Path.GetDirectoryName(Path.GetFullPath(folderOrFile))!;
        }
        else if (Directory.Exists(folderOrFile))
        {
            folder = folderOrFile;
            var nested = Path.Combine(folderOrFile, "cifar-10-batches-bin");
            if (!File.Exists(Path.Combine(folder, "test_batch.bin")) && !File.Exists(Path.Combine(folder, "data_batch_1.bin"))
                && Directory.Exists(nested))
                folder = nested;
            var names = split switch
            {
                Cifar10Split.Train => Enumerable.Range(1, 5).Select(i => $"data_batch_{i}.bin").ToArray(),
                Cifar10Split.Test => new[] { "test_batch.bin" },
                _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected Train or Test."),
            };
            files = names.Select(n => Path.Combine(folder, n)).ToArray();
            var missing = files.Where(f => !File.Exists(f)).Select(Path.GetFileName).ToList();
            if (missing.Count > 0)
                throw new FileNotFoundException(
                    $"CIFAR-10 folder '{folder}' lacks {string.Join(", ", missing)} for the {split} split; expected the files of " +
                    "the binary version (cifar-10-binary.tar.gz, extracted: cifar-10-batches-bin/).", Path.Combine(folder, missing[0]!));
        }
        else
            throw new FileNotFoundException(
                $"CIFAR-10 path '{folderOrFile}' is neither a file nor a folder; expected a batch file (data_batch_N.bin, test_batch.bin) " +
                "or the folder cifar-10-batches-bin.", folderOrFile);

        var starts = new int[files.Length + 1];
        for (int f = 0; f < files.Length; f++)
        {
            long length = new FileInfo(files[f]).Length;
            if (length == 0 || length % RecordBytes != 0)
                throw new InvalidDataException(
                    $"CIFAR-10 file '{files[f]}' is {length} bytes long; expected a positive multiple of {RecordBytes} " +
                    $"(records of 1 label byte + {ImageBytes} pixel bytes). The file is truncated or not a CIFAR-10 binary batch.");
            long total = starts[f] + length / RecordBytes;
            if (total > int.MaxValue)
                throw new InvalidDataException($"CIFAR-10 files hold more than {int.MaxValue} records.");
            starts[f + 1] = (int)total;
        }
        return new Cifar10Source(files, starts, ReadClassNames(folder));
    }

    /// <summary>The names in <c>batches.meta.txt</c> (one a line) when it holds exactly 10; the standard names otherwise.</summary>
    static IReadOnlyList<string> ReadClassNames(string folder)
    {
        var meta = Path.Combine(folder, "batches.meta.txt");
        if (!File.Exists(meta) || new FileInfo(meta).Length > 64 * 1024) return StandardClassNames;
        var names = File.ReadAllLines(meta).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length == StandardClassNames.Count ? names : StandardClassNames;
    }

    public override ImageRowReader OpenReader() => new Reader(this);

    sealed class Reader(Cifar10Source source) : ImageRowReader
    {
        readonly SafeFileHandle?[] _handles = new SafeFileHandle?[source._files.Length];
        readonly byte[] _label = new byte[1];

        (int File, long Offset) Locate(int row)
        {
            if ((uint)row >= (uint)source._count)
                throw new ArgumentOutOfRangeException(nameof(row), row, $"Expected a row in 0 to {source._count - 1}.");
            int f = Array.BinarySearch(source._starts, row);
            if (f < 0) f = ~f - 1; // every file holds at least one record, so the starts strictly increase
            return (f, (long)(row - source._starts[f]) * RecordBytes);
        }

        SafeFileHandle Handle(int f) => _handles[f] ??= File.OpenHandle(source._files[f], FileMode.Open, FileAccess.Read, FileShare.Read);

        void ReadExactly(int f, long offset, Span<byte> destination)
        {
            int total = 0;
            while (total < destination.Length)
            {
                int n = RandomAccess.Read(Handle(f), destination[total..], offset + total);
                if (n == 0)
                    throw new InvalidDataException(
                        $"CIFAR-10 file '{source._files[f]}' ended at byte {offset + total}, inside record {offset / RecordBytes}; " +
                        "it was shortened after it was opened.");
                total += n;
            }
        }

        public override void ReadPixels(int row, Span<byte> destination)
        {
            var (f, offset) = Locate(row);
            ReadExactly(f, offset + 1, destination[..ImageBytes]);
        }

        public override int ReadLabel(int row)
        {
            var (f, offset) = Locate(row);
            ReadExactly(f, offset, _label);
            int label = _label[0];
            if (label >= source.ClassNames.Count)
                throw new InvalidDataException(
                    $"CIFAR-10 file '{source._files[f]}', record {offset / RecordBytes}: label byte {label} is out of range; expected 0 to {source.ClassNames.Count - 1}.");
            return label;
        }

        public override void Dispose()
        {
            foreach (var h in _handles) h?.Dispose();
        }
    }
}
