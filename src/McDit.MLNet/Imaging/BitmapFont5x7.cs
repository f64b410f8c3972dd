namespace McDit.MLNet.Imaging;

/// <summary>
/// A tiny built-in 5×7 pixel font for ASCII labels (ImageSharp.Drawing is not used). Covers capitals, digits and
/// common punctuation; lower-case letters are drawn as capitals, anything else as a hollow box.
/// </summary>
internal static class BitmapFont5x7
{
    public const int GlyphWidth = 5;
    public const int GlyphHeight = 7;
    /// <summary>Horizontal advance per character, glyph plus one blank column.</summary>
    public const int Advance = GlyphWidth + 1;

    // Each glyph: 7 rows of 5 cells, top to bottom, '#' = ink.
    static readonly Dictionary<char, string> Source = new()
    {
        [' '] = ".....|.....|.....|.....|.....|.....|.....",
        ['A'] = ".###.|#...#|#...#|#####|#...#|#...#|#...#",
        ['B'] = "####.|#...#|#...#|####.|#...#|#...#|####.",
        ['C'] = ".###.|#...#|#....|#....|#....|#...#|.###.",
        ['D'] = "###..|#..#.|#...#|#...#|#...#|#..#.|###..",
        ['E'] = "#####|#....|#....|####.|#....|#....|#####",
        ['F'] = "#####|#....|#....|####.|#....|#....|#....",
        ['G'] = ".###.|#...#|#....|#.###|#...#|#...#|.####",
        ['H'] = "#...#|#...#|#...#|#####|#...#|#...#|#...#",
        ['I'] = ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
        ['J'] = "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
        ['K'] = "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
        ['L'] = "#....|#....|#....|#....|#....|#....|#####",
        ['M'] = "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
        ['N'] = "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
        ['O'] = ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
        ['P'] = "####.|#...#|#...#|####.|#....|#....|#....",
        ['Q'] = ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
        ['R'] = "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
        ['S'] = ".####|#....|#....|.###.|....#|....#|####.",
        ['T'] = "#####|..#..|..#..|..#..|..#..|..#..|..#..",
        ['U'] = "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
        ['V'] = "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
        ['W'] = "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
        ['X'] = "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
        ['Y'] = "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
        ['Z'] = "#####|....#|...#.|..#..|.#...|#....|#####",
        ['0'] = ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
        ['1'] = "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
        ['2'] = ".###.|#...#|....#|...#.|..#..|.#...|#####",
        ['3'] = "#####|...#.|..#..|...#.|....#|#...#|.###.",
        ['4'] = "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
        ['5'] = "#####|#....|####.|....#|....#|#...#|.###.",
        ['6'] = "..##.|.#...|#....|####.|#...#|#...#|.###.",
        ['7'] = "#####|....#|...#.|..#..|.#...|.#...|.#...",
        ['8'] = ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
        ['9'] = ".###.|#...#|#...#|.####|....#|...#.|.##..",
        ['.'] = ".....|.....|.....|.....|.....|.##..|.##..",
        [','] = ".....|.....|.....|.....|.##..|..#..|.#...",
        [':'] = ".....|.##..|.##..|.....|.##..|.##..|.....",
        [';'] = ".....|.##..|.##..|.....|.##..|..#..|.#...",
        ['-'] = ".....|.....|.....|.###.|.....|.....|.....",
        ['_'] = ".....|.....|.....|.....|.....|.....|#####",
        ['/'] = "....#|....#|...#.|..#..|.#...|#....|#....",
        ['\\'] = "#....|#....|.#...|..#..|...#.|....#|....#",
        ['('] = "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
        [')'] = ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
        ['['] = ".###.|.#...|.#...|.#...|.#...|.#...|.###.",
        [']'] = ".###.|...#.|...#.|...#.|...#.|...#.|.###.",
        ['+'] = ".....|..#..|..#..|#####|..#..|..#..|.....",
        ['='] = ".....|.....|#####|.....|#####|.....|.....",
        ['\''] = "..#..|..#..|.#...|.....|.....|.....|.....",
        ['"'] = ".#.#.|.#.#.|.#.#.|.....|.....|.....|.....",
        ['!'] = "..#..|..#..|..#..|..#..|..#..|.....|..#..",
        ['?'] = ".###.|#...#|....#|...#.|..#..|.....|..#..",
        ['#'] = ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
        ['%'] = "##...|##..#|...#.|..#..|.#...|#..##|...##",
        ['*'] = ".....|..#..|#.#.#|.###.|#.#.#|..#..|.....",
        ['<'] = "...#.|..#..|.#...|#....|.#...|..#..|...#.",
        ['>'] = ".#...|..#..|...#.|....#|...#.|..#..|.#...",
        ['|'] = "..#..|..#..|..#..|..#..|..#..|..#..|..#..",
        ['&'] = ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#",
        ['@'] = ".###.|#...#|#.###|#.#.#|#.###|#....|.####",
    };

    const string Unknown = "#####|#...#|#...#|#...#|#...#|#...#|#####";

    static readonly Dictionary<char, byte[]> Glyphs = Source.ToDictionary(p => p.Key, p => Parse(p.Value));
    static readonly byte[] UnknownGlyph = Parse(Unknown);

    static byte[] Parse(string glyph)
    {
        var rows = glyph.Split('|');
        if (rows.Length != GlyphHeight || rows.Any(r => r.Length != GlyphWidth))
            throw new InvalidOperationException($"Bad 5×7 glyph '{glyph}'.");
        var bits = new byte[GlyphHeight];
        for (int y = 0; y < GlyphHeight; y++)
            for (int x = 0; x < GlyphWidth; x++)
                if (rows[y][x] == '#') bits[y] |= (byte)(1 << (GlyphWidth - 1 - x));
        return bits;
    }

    /// <summary>Whether <paramref name="c"/> has its own glyph (after mapping lower case to capitals).</summary>
    public static bool HasGlyph(char c) => Glyphs.ContainsKey(Fold(c));

    static char Fold(char c) => c is >= 'a' and <= 'z' ? (char)(c - 32) : c;

    /// <summary>Whether the glyph of <paramref name="c"/> has ink at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public static bool Ink(char c, int x, int y)
    {
        var bits = Glyphs.TryGetValue(Fold(c), out var g) ? g : UnknownGlyph;
        return (bits[y] >> (GlyphWidth - 1 - x) & 1) != 0;
    }

    /// <summary>Width in pixels of <paramref name="length"/> characters at integer <paramref name="scale"/> (no trailing gap).</summary>
    public static int TextWidth(int length, int scale) => length == 0 ? 0 : (length * Advance - 1) * scale;

    /// <summary>Calls <paramref name="plot"/>(x, y) for every ink pixel of <paramref name="text"/> drawn at (x0, y0), scaled by <paramref name="scale"/>.</summary>
    public static void Draw(string text, int x0, int y0, int scale, Action<int, int> plot)
    {
        for (int i = 0; i < text.Length; i++)
            for (int gy = 0; gy < GlyphHeight; gy++)
                for (int gx = 0; gx < GlyphWidth; gx++)
                {
                    if (!Ink(text[i], gx, gy)) continue;
                    int px = x0 + (i * Advance + gx) * scale, py = y0 + gy * scale;
                    for (int sy = 0; sy < scale; sy++)
                        for (int sx = 0; sx < scale; sx++)
                            plot(px + sx, py + sy);
                }
    }
}
