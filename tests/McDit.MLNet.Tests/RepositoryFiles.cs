namespace McDit.MLNet.Tests;

/// <summary>Files of the repository these tests read (the README, build files): found from the test's output folder.</summary>
static class RepositoryFiles
{
    /// <summary>The repository root: the first folder above the test's output that holds McDit.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A file's full path from its path relative to the root.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine(new[] { Root }.Concat(parts).ToArray());

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "McDit.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No McDit.sln above '{AppContext.BaseDirectory}'.");
    }
}
