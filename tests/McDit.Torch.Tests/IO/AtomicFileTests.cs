using McDit.Torch.IO;
using Xunit;

namespace McDit.Torch.Tests.IO;

public class AtomicFileTests
{
    [Fact]
    public void WritesANewFileAndCreatesItsFolder()
    {
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "a", "b", "file.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void ReplacesAnExistingFile()
    {
        using var dir = new TempFolder();
        var path = dir.File("f.txt");
        File.WriteAllText(path, "old content that is longer");
        AtomicFile.WriteAllText(path, "new ✓");
        Assert.Equal("new ✓", File.ReadAllText(path));
        var bytes = File.ReadAllBytes(path);
        Assert.NotEqual(0xEF, bytes[0]); // no byte order mark
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void AFailingWriterLeavesTheOldFileAndNoTemporaryFile()
    {
        using var dir = new TempFolder();
        var path = dir.File("model.safetensors");
        File.WriteAllBytes(path, new byte[] { 9, 9, 9 });
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[1000]);
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal("boom", e.Message);
        Assert.Equal(new byte[] { 9, 9, 9 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void AFailingWriterCreatesNoTargetWhenThereWasNone()
    {
        using var dir = new TempFolder();
        var path = dir.File("none.bin");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, _ => throw new IOException("disk full")));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void AFolderPathIsRejected()
    {
        using var dir = new TempFolder();
        Assert.Throws<ArgumentException>(() => AtomicFile.WriteAllText(dir.Path + Path.DirectorySeparatorChar, "x"));
    }
}
