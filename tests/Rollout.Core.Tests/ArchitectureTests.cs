using System.Reflection;
using Rollout.Core.Spec;

namespace Rollout.Core.Tests;

public sealed class ArchitectureTests
{
    private static readonly Assembly Core = typeof(RolloutSpec).Assembly;

    [Fact]
    public void Core_references_only_the_base_class_library()
    {
        var references = Core.GetReferencedAssemblies().Select(a => a.Name!).ToArray();

        var foreign = references.Where(name => !name.StartsWith("System.", StringComparison.Ordinal) && name is not ("System" or "netstandard" or "mscorlib")).ToArray();

        Assert.Empty(foreign);
        Assert.DoesNotContain(references, name => name.Contains("Azure", StringComparison.OrdinalIgnoreCase)
            || name.Contains("Sql", StringComparison.OrdinalIgnoreCase)
            || name.Contains("DurableTask", StringComparison.OrdinalIgnoreCase)
            || name.Contains("Functions", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Core_types_are_sealed_or_abstract_unless_static()
    {
        var open = Core.GetExportedTypes()
            .Where(t => t.IsClass && !t.IsAbstract && !t.IsSealed && !t.Name.StartsWith('<'))
            .Select(t => t.FullName)
            .ToArray();

        Assert.Empty(open);
    }
}
