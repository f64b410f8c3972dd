using System.Reflection;
using System.Text.Json;
using McDit.Torch.IO;

namespace McDit.Cli;

/// <summary>
/// How the <c>mcdit</c> command reports an exception: one line on stderr (<c>mcdit: what was wrong …</c>), the stack
/// trace only with <c>--verbose</c>, and an exit code chosen by the exception's type: <see cref="Usage"/> (2) for a bad
/// command line, <see cref="BadData"/> (3) for a bad file, <see cref="Failure"/> (1) otherwise. Verbs throw ordinary
/// exceptions with clear messages (<see cref="ArgumentException"/> for bad options, <see cref="InvalidDataException"/>
/// for bad files) and let this handler format them; a verb with an exception type of its own can
/// <see cref="Register{TException}"/> its exit code.
/// </summary>
public static class CliErrors
{
    /// <summary>Exit code of an error not otherwise classified.</summary>
    public const int Failure = 1;
    /// <summary>Exit code of a bad command line (unknown option, bad value, missing path).</summary>
    public const int Usage = 2;
    /// <summary>Exit code of a damaged or unsuitable input file (model, checkpoint, data).</summary>
    public const int BadData = 3;
    /// <summary>Exit code of a run stopped by Ctrl+C or SIGTERM (128 + SIGINT).</summary>
    public const int Interrupted = 130;

    static readonly object Gate = new();
    static readonly Dictionary<Type, int> Codes = new()
    {
        [typeof(ArgumentException)] = Usage,
        [typeof(FileNotFoundException)] = Usage,
        [typeof(DirectoryNotFoundException)] = Usage,
        [typeof(InvalidDataException)] = BadData,
        [typeof(SafeTensorsFormatException)] = BadData,
        [typeof(McDit.Torch.Interop.TorchFormatException)] = BadData, // also UnsafePickleException
        [typeof(JsonException)] = BadData,
        [typeof(FormatException)] = BadData,
        [typeof(System.Text.DecoderFallbackException)] = BadData, // an ArgumentException, but about the bytes of a file
        [typeof(SixLabors.ImageSharp.ImageFormatException)] = BadData,
        [typeof(OperationCanceledException)] = Interrupted,
        [typeof(IOException)] = Failure,
        [typeof(UnauthorizedAccessException)] = Failure,
        [typeof(InvalidOperationException)] = Failure,
        [typeof(OutOfMemoryException)] = Failure,
    };

    /// <summary>Makes exceptions of type <typeparamref name="TException"/> (and derived ones, unless registered themselves) exit with <paramref name="exitCode"/>.</summary>
    public static void Register<TException>(int exitCode) where TException : Exception
    {
        lock (Gate) Codes[typeof(TException)] = exitCode;
    }

    /// <summary>The exit code for <paramref name="e"/>: that of its nearest registered base type, else <see cref="Failure"/>.</summary>
    public static int ExitCodeOf(Exception e)
    {
        lock (Gate)
            for (var t = Unwrap(e).GetType(); t is not null; t = t.BaseType)
                if (Codes.TryGetValue(t, out var code)) return code;
        return Failure;
    }

    /// <summary>Writes <paramref name="e"/> to <paramref name="error"/> as one line (plus the stack with <paramref name="verbose"/>) and returns its exit code.</summary>
    public static int Report(Exception e, TextWriter error, bool verbose)
    {
        var inner = Unwrap(e);
        int code = ExitCodeOf(inner);
        error.WriteLine("mcdit: " + Describe(inner, code, verbose));
        if (verbose) error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>One line for an exception: its message, or for an unexpected type the type too and where to look.</summary>
    static string Describe(Exception e, int code, bool verbose)
    {
        var message = OneLine(e.Message);
        if (e is ArgumentException)
        {
            // .NET appends " (Parameter 'x')" and "Actual value was y." to argument messages; ours already name both.
            message = System.Text.RegularExpressions.Regex.Replace(message, @"\s*\(Parameter '[^']*'\)", "");
            message = System.Text.RegularExpressions.Regex.Replace(message, @"\s*Actual value was .*$", "");
        }
        if (e is OutOfMemoryException)
            return $"out of memory ({message}); use a smaller --batch-size or model, or a machine with more memory.";
        if (e is OperationCanceledException) return "interrupted.";
        bool expected;
        lock (Gate) expected = Codes.ContainsKey(e.GetType()) || code != Failure || e is IOException or InvalidOperationException or UnauthorizedAccessException;
        if (expected || message.Length > 0 && e.GetType().Namespace?.StartsWith("McDit", StringComparison.Ordinal) == true) return message;
        return $"unexpected {e.GetType().Name}: {message}" + (verbose ? "" : " (run again with --verbose for the stack trace, and please report it)");
    }

    /// <summary>A message on one line: line breaks and runs of spaces become single spaces.</summary>
    public static string OneLine(string message) =>
        string.Join(' ', message.ReplaceLineEndings(" ").Split(' ', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>Removes reflection, type-initialisation and single-exception aggregate wrappers.</summary>
    public static Exception Unwrap(Exception e)
    {
        while (e is TargetInvocationException or TypeInitializationException or AggregateException { InnerExceptions.Count: 1 } && e.InnerException is not null)
            e = e.InnerException;
        return e;
    }
}
