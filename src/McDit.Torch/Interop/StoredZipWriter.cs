using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace McDit.Torch.Interop;

/// <summary>
/// Writes a zip archive the way PyTorch's <c>PyTorchStreamWriter</c> does: every entry stored (not compressed), its data
/// starting at a multiple of 64 bytes (the local header's extra field is padded, with PyTorch's <c>FB</c> field id), fixed
/// timestamps (1980-01-01), so the same content gives the same bytes. Archives up to 4 GiB and 65,535 entries (no Zip64).
/// </summary>
internal sealed class StoredZipWriter
{
    /// <summary>Alignment of every entry's data.</summary>
    public const int Alignment = 64;
    const ushort DosDate = (0 << 9) | (1 << 5) | 1; // 1980-01-01
    const ushort PaddingFieldId = 0x4246;           // "FB", as PyTorch

    readonly Stream _out;
    readonly string _target;
    long _position;
    readonly List<(byte[] Name, uint Crc, uint Size, uint Offset)> _entries = new();

    public StoredZipWriter(Stream output, string target)
    {
        _out = output;
        _target = target;
    }

    /// <summary>Adds an entry whose data is written by <paramref name="write"/> in pieces (given to the sink in order).</summary>
    public void Add(string name, long length, Action<Action<ReadOnlySpan<byte>>> write)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        long offset = _position;
        long dataStart = offset + 30 + nameBytes.Length + 4;
        int pad = (int)((Alignment - dataStart % Alignment) % Alignment);
        CheckFits(offset + 30 + nameBytes.Length + 4 + pad + length);

        // The CRC goes into the local header, so the data is hashed first (the writers are cheap to call twice).
        var crc = new Crc32();
        long counted = 0;
        write(span => { crc.Append(span); counted += span.Length; });
        if (counted != length) throw new InvalidOperationException($"Entry '{name}' produced {counted} bytes; {length} were announced.");
        uint crcValue = crc.GetCurrentHashAsUInt32();

        Span<byte> h = stackalloc byte[30];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 20);    // version needed
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 0);     // flags
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], 0);     // stored
        BinaryPrimitives.WriteUInt16LittleEndian(h[10..], 0);    // time
        BinaryPrimitives.WriteUInt16LittleEndian(h[12..], DosDate);
        BinaryPrimitives.WriteUInt32LittleEndian(h[14..], crcValue);
        BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[22..], (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(4 + pad));
        Emit(h);
        Emit(nameBytes);
        Span<byte> field = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(field, PaddingFieldId);
        BinaryPrimitives.WriteUInt16LittleEndian(field[2..], (ushort)pad);
        Emit(field);
        Emit(new byte[pad]);
        long before = _position;
        write(span => Emit(span));
        if (_position - before != length) throw new InvalidOperationException($"Entry '{name}' wrote {_position - before} bytes the second time; {length} were announced.");
        _entries.Add((nameBytes, crcValue, (uint)length, (uint)offset));
    }

    /// <summary>Adds an entry from bytes in memory.</summary>
    public void Add(string name, byte[] data) => Add(name, data.Length, sink => sink(data));

    /// <summary>Writes the central directory and the end record.</summary>
    public void Finish()
    {
        if (_entries.Count > ushort.MaxValue) throw new InvalidOperationException($"{_target}: {_entries.Count} entries; a zip without Zip64 holds at most 65,535.");
        long cdStart = _position;
        Span<byte> c = stackalloc byte[46];
        foreach (var (name, crc, size, offset) in _entries)
        {
            c.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c[4..], 20);     // version made by
            BinaryPrimitives.WriteUInt16LittleEndian(c[6..], 20);     // version needed
            BinaryPrimitives.WriteUInt16LittleEndian(c[8..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(c[10..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(c[12..], 0);
            BinaryPrimitives.WriteUInt16LittleEndian(c[14..], DosDate);
            BinaryPrimitives.WriteUInt32LittleEndian(c[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c[20..], size);
            BinaryPrimitives.WriteUInt32LittleEndian(c[24..], size);
            BinaryPrimitives.WriteUInt16LittleEndian(c[28..], (ushort)name.Length);
            // extra, comment, disk, internal and external attributes: 0
            BinaryPrimitives.WriteUInt32LittleEndian(c[42..], offset);
            Emit(c);
            Emit(name);
        }
        long cdSize = _position - cdStart;
        CheckFits(_position + 22);
        Span<byte> e = stackalloc byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(e[10..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(e[12..], (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)cdStart);
        Emit(e);
    }

    void CheckFits(long end)
    {
        if (end > uint.MaxValue)
            throw new InvalidOperationException(
                $"{_target}: the .pt file would be larger than 4 GiB, which this writer does not support (no Zip64); write .safetensors instead.");
    }

    void Emit(ReadOnlySpan<byte> bytes)
    {
        _out.Write(bytes);
        _position += bytes.Length;
    }
}
