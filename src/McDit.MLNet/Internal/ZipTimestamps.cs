using System.Buffers.Binary;

namespace McDit.MLNet.Internal;

/// <summary>
/// Sets the modification time of every entry of a zip file to one fixed value (1980-01-01 00:00, the earliest DOS time),
/// in place: ML.NET's <c>Model.Save</c> stamps entries with the current time, so two saves of the same model differ only
/// there. The compressed data is left as it is. Handles zip64; rejects what it does not understand.
/// </summary>
static class ZipTimestamps
{
    const uint EndOfCentralDirectory = 0x06054b50, Zip64Locator = 0x07064b50, Zip64End = 0x06064b50;
    const uint CentralHeader = 0x02014b50, LocalHeader = 0x04034b50;
    const ushort FixedTime = 0, FixedDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01 00:00:00

    public static void Normalize(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        var (offset, size, count) = FindCentralDirectory(file);
        if (size > int.MaxValue || offset + size > file.Length) throw Bad(path, "the central directory lies outside the file");
        var directory = new byte[size];
        file.Position = offset;
        file.ReadExactly(directory);
        var localHeaders = new List<long>();
        int p = 0;
        for (long i = 0; i < count; i++)
        {
            if (p + 46 > directory.Length || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p)) != CentralHeader)
                throw Bad(path, $"central directory entry {i} is malformed");
            BinaryPrimitives.WriteUInt16LittleEndian(directory.AsSpan(p + 12), FixedTime);
            BinaryPrimitives.WriteUInt16LittleEndian(directory.AsSpan(p + 14), FixedDate);
            uint compressed = BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p + 20));
            uint uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p + 24));
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(directory.AsSpan(p + 28));
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(directory.AsSpan(p + 30));
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(directory.AsSpan(p + 32));
            long local = BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p + 42));
            int extra = p + 46 + nameLength, extraEnd = extra + extraLength;
            if (extraEnd + commentLength > directory.Length) throw Bad(path, $"central directory entry {i} is truncated");
            for (int e = extra; e + 4 <= extraEnd;)
            {
                ushort id = BinaryPrimitives.ReadUInt16LittleEndian(directory.AsSpan(e));
                int length = BinaryPrimitives.ReadUInt16LittleEndian(directory.AsSpan(e + 2));
                if (id == 0x0001 && local == uint.MaxValue)
                {
                    // The zip64 field holds, in order, the 64-bit sizes that overflowed and then the header offset.
                    int at = e + 4 + (uncompressed == uint.MaxValue ? 8 : 0) + (compressed == uint.MaxValue ? 8 : 0);
                    if (at + 8 > e + 4 + length) throw Bad(path, $"entry {i} has a malformed zip64 field");
                    local = BinaryPrimitives.ReadInt64LittleEndian(directory.AsSpan(at));
                }
                else if (id is 0x5455 or 0x000a) throw Bad(path, $"entry {i} carries an extended timestamp, which this step does not normalise");
                e += 4 + length;
            }
            localHeaders.Add(local);
            p = extraEnd + commentLength;
        }
        Span<byte> header = stackalloc byte[14];
        foreach (var local in localHeaders)
        {
            if (local < 0 || local + 30 > offset) throw Bad(path, "a local header lies outside the file");
            file.Position = local;
            file.ReadExactly(header);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header) != LocalHeader) throw Bad(path, $"no local header at offset {local}");
            BinaryPrimitives.WriteUInt16LittleEndian(header[10..], FixedTime);
            BinaryPrimitives.WriteUInt16LittleEndian(header[12..], FixedDate);
            file.Position = local;
            file.Write(header);
        }
        file.Position = offset;
        file.Write(directory);
    }

    static (long Offset, long Size, long Count) FindCentralDirectory(FileStream file)
    {
        int tail = (int)Math.Min(file.Length, 22 + 65535 + 20);
        var buffer = new byte[tail];
        file.Position = file.Length - tail;
        file.ReadExactly(buffer);
        for (int i = tail - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i)) != EndOfCentralDirectory) continue;
            int comment = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(i + 20));
            if (i + 22 + comment != tail) continue;
            long count = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(i + 10));
            long size = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i + 12));
            long offset = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i + 16));
            if (count == ushort.MaxValue || size == uint.MaxValue || offset == uint.MaxValue)
            {
                if (i < 20 || BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i - 20)) != Zip64Locator)
                    throw Bad(file.Name, "a zip64 end record is announced but missing");
                long end64 = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(i - 12));
                var record = new byte[56];
                file.Position = end64;
                file.ReadExactly(record);
                if (BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64End) throw Bad(file.Name, "the zip64 end record is malformed");
                count = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(32));
                size = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(40));
                offset = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(48));
            }
            return (offset, size, count);
        }
        throw Bad(file.Name, "it has no end-of-central-directory record");
    }

    static InvalidDataException Bad(string path, string what) => new($"{path} is not a zip file this step can normalise: {what}.");
}
