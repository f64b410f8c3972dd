namespace McDit.Reliability.Host;

/// <summary>
/// Process memory as Linux reports it, and a watchdog that ends this process when its resident memory passes a limit, so
/// a loader that allocates without bound fails its case instead of exhausting a shared machine.
/// </summary>
static class MemoryGuard
{
    /// <summary>Resident set size now, in bytes (0 where /proc is unavailable).</summary>
    public static long Resident() => Read("VmRSS:");

    /// <summary>Peak resident set size since the last <see cref="ResetPeak"/>, in bytes.</summary>
    public static long Peak() => Read("VmHWM:");

    /// <summary>Resets the peak to the current size (Linux: writing 5 to /proc/self/clear_refs).</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    public static void Start(long limitBytes)
    {
        var thread = new Thread(() =>
        {
            while (true)
            {
                long rss = Resident();
                if (rss > limitBytes)
                {
                    Console.Out.WriteLine($"ABORT memory {rss}");
                    Console.Out.Flush();
                    Environment.FailFast($"resident memory {rss:N0} bytes passed the limit of {limitBytes:N0}");
                }
                Thread.Sleep(20);
            }
        }) { IsBackground = true, Name = "memory guard" };
        thread.Start();
    }

    static long Read(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        return 0;
    }
}
