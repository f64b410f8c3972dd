using System.Buffers.Binary;
using System.Text;

namespace McDit.Torch.Runtime;

/// <summary>
/// Writes the smallest x86-64 Linux shared object that exports functions returning fixed <c>int</c> values
/// (<c>mov eax, imm32; ret</c>), so McDit can interpose a native function without a C compiler or a prebuilt binary
/// (see <see cref="MklVendorDispatch"/>). The object has two segments (headers, hash table, symbols and code read-only and
/// executable; the dynamic section writable, as the loader expects), a SysV hash table with one bucket, a
/// non-executable stack note and section headers, so <c>readelf</c> and <c>nm -D</c> read it like a compiler's output.
/// </summary>
internal static class ElfStubLibrary
{
    const int PageSize = 0x1000;
    const int ElfHeaderSize = 64, ProgramHeaderSize = 56, SectionHeaderSize = 64, SymbolSize = 24, DynamicEntrySize = 16;
    const int FunctionStride = 16;

    /// <summary>The bytes of a shared object named <paramref name="soname"/> exporting each function of <paramref name="functions"/>.</summary>
    public static byte[] Build(string soname, IReadOnlyList<(string Name, int Returns)> functions)
    {
        ArgumentException.ThrowIfNullOrEmpty(soname);
        if (functions.Count == 0) throw new ArgumentException("At least one function is needed.", nameof(functions));

        // String table: "\0" name1 "\0" name2 "\0" ... soname "\0".
        var dynstr = new List<byte> { 0 };
        var nameOffsets = new int[functions.Count];
        for (int i = 0; i < functions.Count; i++)
        {
            nameOffsets[i] = dynstr.Count;
            dynstr.AddRange(Encoding.ASCII.GetBytes(functions[i].Name));
            dynstr.Add(0);
        }
        int sonameOffset = dynstr.Count;
        dynstr.AddRange(Encoding.ASCII.GetBytes(soname));
        dynstr.Add(0);

        int symbols = functions.Count + 1;                       // index 0 is the null symbol
        const int programHeaders = 4;
        int hashOffset = ElfHeaderSize + programHeaders * ProgramHeaderSize;
        int hashSize = 4 * (2 + 1 + symbols);                    // nbucket, nchain, one bucket, a chain entry per symbol
        int dynsymOffset = Align(hashOffset + hashSize, 8);
        int dynstrOffset = dynsymOffset + symbols * SymbolSize;
        int textOffset = Align(dynstrOffset + dynstr.Count, 16);
        int textEnd = textOffset + functions.Count * FunctionStride;
        int dynamicOffset = Align(textEnd, PageSize);            // its own page: the loader may write to it
        const int dynamicEntries = 7;
        int dynamicSize = dynamicEntries * DynamicEntrySize;
        byte[] shstrtab = Encoding.ASCII.GetBytes("\0.hash\0.dynsym\0.dynstr\0.text\0.dynamic\0.shstrtab\0");
        int shstrtabOffset = dynamicOffset + dynamicSize;
        int sectionsOffset = Align(shstrtabOffset + shstrtab.Length, 8);
        const int sections = 7;
        var bytes = new byte[sectionsOffset + sections * SectionHeaderSize];
        var span = bytes.AsSpan();

        // ELF header.
        "\u007fELF"u8.CopyTo(span);
        span[4] = 2; span[5] = 1; span[6] = 1;                   // 64-bit, little-endian, version 1, System V ABI
        U16(span, 16, 3);                                        // ET_DYN
        U16(span, 18, 62);                                       // EM_X86_64
        U32(span, 20, 1);
        U64(span, 32, ElfHeaderSize);                            // program headers follow the header
        U64(span, 40, (ulong)sectionsOffset);
        U16(span, 52, ElfHeaderSize);
        U16(span, 54, ProgramHeaderSize);
        U16(span, 56, programHeaders);
        U16(span, 58, SectionHeaderSize);
        U16(span, 60, sections);
        U16(span, 62, sections - 1);                             // .shstrtab is the last section

        // Program headers: PT_LOAD (r-x), PT_LOAD (rw-), PT_DYNAMIC, PT_GNU_STACK (rw-: no executable stack).
        const uint R = 4, W = 2, X = 1;
        ProgramHeader(span, 0, type: 1, R | X, 0, textEnd, PageSize);
        ProgramHeader(span, 1, type: 1, R | W, dynamicOffset, dynamicSize, PageSize);
        ProgramHeader(span, 2, type: 2, R | W, dynamicOffset, dynamicSize, 8);
        ProgramHeader(span, 3, type: 0x6474e551, R | W, 0, 0, 16);

        // SysV hash table with one bucket: every name hashes into it, so the chain simply lists the symbols 1..n.
        U32(span, hashOffset, 1);
        U32(span, hashOffset + 4, (uint)symbols);
        U32(span, hashOffset + 8, 1);                            // bucket 0 starts at symbol 1
        for (int i = 1; i < symbols; i++)
            U32(span, hashOffset + 12 + 4 * i, i + 1 < symbols ? (uint)(i + 1) : 0);

        // Symbols: global functions in .text (section 4), default visibility.
        for (int i = 0; i < functions.Count; i++)
        {
            int at = dynsymOffset + (i + 1) * SymbolSize;
            U32(span, at, (uint)nameOffsets[i]);
            span[at + 4] = (1 << 4) | 2;                         // STB_GLOBAL, STT_FUNC
            U16(span, at + 6, 4);
            U64(span, at + 8, (ulong)(textOffset + i * FunctionStride));
            U64(span, at + 16, 6);
        }
        dynstr.ToArray().CopyTo(span[dynstrOffset..]);

        // Code: mov eax, imm32 (B8 id); ret (C3).
        for (int i = 0; i < functions.Count; i++)
        {
            int at = textOffset + i * FunctionStride;
            span[at] = 0xB8;
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 1)..], functions[i].Returns);
            span[at + 5] = 0xC3;
        }

        // Dynamic section.
        var dynamic = new (long Tag, long Value)[]
        {
            (4, hashOffset), (5, dynstrOffset), (6, dynsymOffset), (10, dynstr.Count), (11, SymbolSize), (14, sonameOffset), (0, 0),
        };
        for (int i = 0; i < dynamic.Length; i++)
        {
            U64(span, dynamicOffset + i * DynamicEntrySize, (ulong)dynamic[i].Tag);
            U64(span, dynamicOffset + i * DynamicEntrySize + 8, (ulong)dynamic[i].Value);
        }
        shstrtab.CopyTo(span[shstrtabOffset..]);

        // Section headers (for tools; the loader reads the program headers only).
        int Name(string name) => IndexOf(shstrtab, name);
        const ulong Alloc = 2, Write = 1, Exec = 4;
        SectionHeader(span, sectionsOffset, 1, Name(".hash"), type: 5, Alloc, hashOffset, hashSize, link: 2, info: 0, align: 8, entSize: 4);
        SectionHeader(span, sectionsOffset, 2, Name(".dynsym"), type: 11, Alloc, dynsymOffset, symbols * SymbolSize, link: 3, info: 1, align: 8, entSize: SymbolSize);
        SectionHeader(span, sectionsOffset, 3, Name(".dynstr"), type: 3, Alloc, dynstrOffset, dynstr.Count, link: 0, info: 0, align: 1, entSize: 0);
        SectionHeader(span, sectionsOffset, 4, Name(".text"), type: 1, Alloc | Exec, textOffset, textEnd - textOffset, link: 0, info: 0, align: 16, entSize: 0);
        SectionHeader(span, sectionsOffset, 5, Name(".dynamic"), type: 6, Alloc | Write, dynamicOffset, dynamicSize, link: 3, info: 0, align: 8, entSize: DynamicEntrySize);
        SectionHeader(span, sectionsOffset, 6, Name(".shstrtab"), type: 3, 0, shstrtabOffset, shstrtab.Length, link: 0, info: 0, align: 1, entSize: 0, loaded: false);
        return bytes;
    }

    static void ProgramHeader(Span<byte> elf, int index, uint type, uint flags, long offset, long size, long align)
    {
        int at = ElfHeaderSize + index * ProgramHeaderSize;
        U32(elf, at, type);
        U32(elf, at + 4, flags);
        U64(elf, at + 8, (ulong)offset);
        U64(elf, at + 16, (ulong)offset);                        // vaddr = file offset: the object maps as laid out
        U64(elf, at + 24, (ulong)offset);
        U64(elf, at + 32, (ulong)size);
        U64(elf, at + 40, (ulong)size);
        U64(elf, at + 48, (ulong)align);
    }

    static void SectionHeader(Span<byte> elf, int table, int index, int name, uint type, ulong flags, long offset, long size,
        uint link, uint info, long align, long entSize, bool loaded = true)
    {
        int at = table + index * SectionHeaderSize;
        U32(elf, at, (uint)name);
        U32(elf, at + 4, type);
        U64(elf, at + 8, flags);
        U64(elf, at + 16, loaded ? (ulong)offset : 0);
        U64(elf, at + 24, (ulong)offset);
        U64(elf, at + 32, (ulong)size);
        U32(elf, at + 40, link);
        U32(elf, at + 44, info);
        U64(elf, at + 48, (ulong)align);
        U64(elf, at + 56, (ulong)entSize);
    }

    static int IndexOf(byte[] table, string name)
    {
        var needle = Encoding.ASCII.GetBytes(name + "\0");
        return table.AsSpan().IndexOf(needle);
    }

    static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;
    static void U16(Span<byte> s, int at, int v) => BinaryPrimitives.WriteUInt16LittleEndian(s[at..], (ushort)v);
    static void U32(Span<byte> s, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(s[at..], v);
    static void U32(Span<byte> s, int at, int v) => U32(s, at, (uint)v);
    static void U64(Span<byte> s, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(s[at..], v);
    static void U64(Span<byte> s, int at, long v) => U64(s, at, (ulong)v);
}
