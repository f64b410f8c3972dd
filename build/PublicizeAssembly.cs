// MSBuild inline task (RoslynCodeTaskFactory): writes a "publicized" copy of each source assembly for the
// compiler only. Every internal type and member becomes public, private protected becomes protected, protected
// internal becomes public; private, protected and public are left as they are, and so is everything else
// (bodies, attributes, identity and version), so the compiled code binds to the genuine assembly at run time.
// See MLNetPublicize.targets.
using System;
using System.IO;
using System.Reflection;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class McDitPublicizeAssembly : Task
{
    [Required] public ITaskItem[] Sources { get; set; }
    [Required] public string OutputDirectory { get; set; }
    [Required] public string CecilDirectory { get; set; }

    public override bool Execute()
    {
        // MSBuild does not always find an inline task's references at run time: answer for Mono.Cecil ourselves.
        ResolveEventHandler resolve = (sender, args) =>
        {
            var name = new AssemblyName(args.Name).Name;
            var path = Path.Combine(CecilDirectory, name + ".dll");
            return name.StartsWith("Mono.Cecil", StringComparison.Ordinal) && File.Exists(path) ? Assembly.LoadFrom(path) : null;
        };
        AppDomain.CurrentDomain.AssemblyResolve += resolve;
        try
        {
            Directory.CreateDirectory(OutputDirectory);
            foreach (var source in Sources)
            {
                var input = source.GetMetadata("FullPath");
                var output = Path.Combine(OutputDirectory, Path.GetFileName(input));
                var counts = Publicizer.Run(input, output);
                Log.LogMessage(MessageImportance.Normal, "McDit: publicized {0} types and {1} members of {2} into {3}",
                    counts[0], counts[1], Path.GetFileName(input), output);
            }
        }
        catch (Exception e)
        {
            Log.LogError("McDit: could not publicize the ML.NET reference assemblies: {0}", e);
        }
        finally
        {
            AppDomain.CurrentDomain.AssemblyResolve -= resolve;
        }
        return !Log.HasLoggedErrors;
    }
}

// Kept apart from the task so that Mono.Cecil is loaded only after the resolver above is installed.
static class Publicizer
{
    public static int[] Run(string input, string output)
    {
        int types = 0, members = 0;
        var resolver = new Mono.Cecil.DefaultAssemblyResolver();
        resolver.AddSearchDirectory(Path.GetDirectoryName(input));
        var parameters = new Mono.Cecil.ReaderParameters { AssemblyResolver = resolver, ReadSymbols = false, InMemory = true };
        using (var assembly = Mono.Cecil.AssemblyDefinition.ReadAssembly(input, parameters))
        {
            foreach (var module in assembly.Modules)
                foreach (var type in module.GetTypes()) // includes nested types
                {
                    if (PublicizeType(type)) types++;
                    foreach (var method in type.Methods)
                        if (PublicizeMethod(method)) members++;
                    foreach (var field in type.Fields)
                        if (PublicizeField(field)) members++;
                }
            var tmp = output + ".tmp";
            assembly.Write(tmp);
            if (File.Exists(output)) File.Delete(output);
            File.Move(tmp, output);
        }
        return new[] { types, members };
    }

    static bool PublicizeType(Mono.Cecil.TypeDefinition type)
    {
        var visibility = type.Attributes & Mono.Cecil.TypeAttributes.VisibilityMask;
        Mono.Cecil.TypeAttributes target;
        if (!type.IsNested)
        {
            if (visibility != Mono.Cecil.TypeAttributes.NotPublic) return false;
            target = Mono.Cecil.TypeAttributes.Public;
        }
        else if (visibility == Mono.Cecil.TypeAttributes.NestedAssembly || visibility == Mono.Cecil.TypeAttributes.NestedFamORAssem)
            target = Mono.Cecil.TypeAttributes.NestedPublic;
        else if (visibility == Mono.Cecil.TypeAttributes.NestedFamANDAssem)
            target = Mono.Cecil.TypeAttributes.NestedFamily;
        else
            return false;
        type.Attributes = (type.Attributes & ~Mono.Cecil.TypeAttributes.VisibilityMask) | target;
        return true;
    }

    static bool PublicizeMethod(Mono.Cecil.MethodDefinition method)
    {
        var access = method.Attributes & Mono.Cecil.MethodAttributes.MemberAccessMask;
        Mono.Cecil.MethodAttributes target;
        if (access == Mono.Cecil.MethodAttributes.Assembly || access == Mono.Cecil.MethodAttributes.FamORAssem)
            target = Mono.Cecil.MethodAttributes.Public;
        else if (access == Mono.Cecil.MethodAttributes.FamANDAssem)
            target = Mono.Cecil.MethodAttributes.Family;
        else
            return false;
        method.Attributes = (method.Attributes & ~Mono.Cecil.MethodAttributes.MemberAccessMask) | target;
        return true;
    }

    static bool PublicizeField(Mono.Cecil.FieldDefinition field)
    {
        var access = field.Attributes & Mono.Cecil.FieldAttributes.FieldAccessMask;
        Mono.Cecil.FieldAttributes target;
        if (access == Mono.Cecil.FieldAttributes.Assembly || access == Mono.Cecil.FieldAttributes.FamORAssem)
            target = Mono.Cecil.FieldAttributes.Public;
        else if (access == Mono.Cecil.FieldAttributes.FamANDAssem)
            target = Mono.Cecil.FieldAttributes.Family;
        else
            return false;
        field.Attributes = (field.Attributes & ~Mono.Cecil.FieldAttributes.FieldAccessMask) | target;
        return true;
    }
}
