// McDit.MLNet is compiled against publicized copies of these ML.NET assemblies (build/MLNetPublicize.targets).
// At run time the genuine, unmodified assemblies are loaded; this attribute tells the runtime to skip its
// visibility checks for them, so the internal ML.NET plumbing the transformers use is accessible.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices
{
    /// <summary>
    /// Recognised by the .NET runtime (not declared by the framework): the named assembly's non-public types and
    /// members may be used by this assembly without access checks.
    /// </summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        /// <summary>Creates the attribute for the assembly with simple name <paramref name="assemblyName"/>.</summary>
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        /// <summary>Simple name of the assembly whose access checks are skipped.</summary>
        public string AssemblyName { get; }
    }
}
