using Xunit;

namespace McDit.Torch.Tests.Training;

/// <summary>Byte-level edits of safetensors files for damage tests.</summary>
internal static class SafeTensorsBytes
{
    /// <summary>Relabels every tensor of dtype <paramref name="from"/> as <paramref name="to"/> (same element size: the file stays well-formed).</summary>
    public static byte[] RelabelDType(byte[] file, string from, string to)
    {
        long n = BitConverter.ToInt64(file, 0);
        var header = System.Text.Encoding.UTF8.GetString(file, 8, (int)n).Replace($"\"dtype\":\"{from}\"", $"\"dtype\":\"{to}\"");
        var bytes = System.Text.Encoding.UTF8.GetBytes(header);
        Assert.Equal(n, bytes.Length);
        return file[..8].Concat(bytes).Concat(file[(8 + (int)n)..]).ToArray();
    }
}
