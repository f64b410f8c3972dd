namespace McDit.MLNet.Data;

/// <summary>
/// A folder with one sub-folder per class (torchvision's ImageFolder convention): classes are the sub-folders sorted
/// ordinally, class index = position in that order; the images of a class are the files with an image extension
/// anywhere below its folder, sorted by folder then file name. Only the list of files is held; images are decoded
/// when a cursor reads them.
/// </summary>
sealed class ImageFolderSource : ImageRowSource
{
    readonly string[] _paths;
    readonly int[] _labels;
    readonly BoundedImageDecoder _decoder;

    ImageFolderSource(string[] paths, int[] labels, IReadOnlyList<string> classNames, BoundedImageDecoder decoder, ImageFolderOptions options)
        : base(options.Channels, options.ImageSize, options.ImageSize, classNames)
    {
        _paths = paths;
        _labels = labels;
        _decoder = decoder;
    }

    public override int Count => _paths.Length;
    public override bool HasPath => true;

    /// <summary>
    /// Lists the classes and files and checks each file: its size and header, or (with
    /// <see cref="ImageFolderOptions.SkipUnreadable"/>) a full decode, leaving out and reporting the files that fail.
    /// </summary>
    public static ImageFolderSource Open(string root, ImageFolderOptions options, List<SkippedImageFile> skipped)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Validate(options);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist; expected a folder with one sub-folder of images per class.");
        var walk = new EnumerationOptions { AttributesToSkip = 0, RecurseSubdirectories = false, IgnoreInaccessible = false };
        var classFolders = Directory.GetDirectories(root, "*", walk).OrderBy(Path.GetFileName, StringComparer.Ordinal).ToArray();
        if (classFolders.Length == 0)
            throw new InvalidDataException(
                $"Image folder '{root}' has no sub-folders; expected one sub-folder per class (for example {root}/cat/1.png, {root}/dog/2.png).");
        var extensions = new HashSet<string>(
            (options.Extensions ?? ImageFolderOptions.DefaultExtensions).Select(e => e.StartsWith('.') ? e : "." + e),
            StringComparer.OrdinalIgnoreCase);
        var decoder = new BoundedImageDecoder(options);
        var scratch = options.SkipUnreadable ? new byte[decoder.ImageBytes] : null;
        var recurse = new EnumerationOptions { AttributesToSkip = 0, RecurseSubdirectories = true, MaxRecursionDepth = 64, IgnoreInaccessible = false };
        var paths = new List<string>();
        var labels = new List<int>();
        var emptyClasses = new List<string>();
        for (int c = 0; c < classFolders.Length; c++)
        {
            var files = Directory.EnumerateFiles(classFolders[c], "*", recurse)
                .Where(f => extensions.Contains(Path.GetExtension(f)))
                .OrderBy(f => Path.GetDirectoryName(f), StringComparer.Ordinal)
                .ThenBy(Path.GetFileName, StringComparer.Ordinal)
                .ToList();
            if (files.Count == 0) emptyClasses.Add(Path.GetFileName(classFolders[c]));
            foreach (var file in files)
            {
                try
                {
                    if (scratch is null) decoder.CheckHeader(file);
                    else decoder.Decode(file, scratch);
                }
                catch (UnreadableImageException e)
                {
                    if (!options.SkipUnreadable) throw e.ToInvalidData();
                    skipped.Add(new SkippedImageFile(file, e.Reason));
                    continue;
                }
                paths.Add(file);
                labels.Add(c);
            }
        }
        if (emptyClasses.Count > 0)
            throw new InvalidDataException(
                $"Image folder '{root}': class folder(s) {string.Join(", ", emptyClasses.Select(n => $"'{n}'"))} hold no files with the " +
                $"extensions {string.Join(", ", extensions.Order(StringComparer.Ordinal))}; expected at least one image per class.");
        if (paths.Count == 0)
            throw new InvalidDataException($"Image folder '{root}': none of its {skipped.Count} image files could be read; the first: {skipped[0].Path}: {skipped[0].Reason}");
        var names = classFolders.Select(f => Path.GetFileName(f)!).ToArray();
        return new ImageFolderSource(paths.ToArray(), labels.ToArray(), names, decoder, options);
    }

    static void Validate(ImageFolderOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.ImageSize < 1 || o.ImageSize > 4096)
            throw new ArgumentOutOfRangeException(nameof(o), o.ImageSize, $"ImageFolderOptions.ImageSize is {o.ImageSize}; expected 1 to 4096 pixels.");
        if (o.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(o), o.Channels, $"ImageFolderOptions.Channels is {o.Channels}; expected 1 (grey) or 3 (RGB).");
        if (!Enum.IsDefined(o.FitMode))
            throw new ArgumentOutOfRangeException(nameof(o), o.FitMode, "ImageFolderOptions.FitMode: expected CenterCrop or Squash.");
        if (o.MaxFileBytes < 1)
            throw new ArgumentOutOfRangeException(nameof(o), o.MaxFileBytes, $"ImageFolderOptions.MaxFileBytes is {o.MaxFileBytes}; expected a positive number of bytes.");
        if (o.MaxPixels < 1)
            throw new ArgumentOutOfRangeException(nameof(o), o.MaxPixels, $"ImageFolderOptions.MaxPixels is {o.MaxPixels}; expected a positive number of pixels.");
        if (o.Extensions is { } ext && (ext.Count == 0 || ext.Any(e => string.IsNullOrWhiteSpace(e) || e == ".")))
            throw new ArgumentException("ImageFolderOptions.Extensions: expected a non-empty list of extensions such as \".png\".", nameof(o));
    }

    public override ImageRowReader OpenReader() => new Reader(this);

    sealed class Reader(ImageFolderSource source) : ImageRowReader
    {
        public override void ReadPixels(int row, Span<byte> destination)
        {
            try
            {
                source._decoder.Decode(source._paths[row], destination);
            }
            catch (UnreadableImageException e)
            {
                throw e.ToInvalidData();
            }
        }
        public override int ReadLabel(int row) => source._labels[row];
        public override string ReadPath(int row) => source._paths[row];
    }
}
