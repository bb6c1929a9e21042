using System.ComponentModel;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Rollout.Storage.Cosmos.Tests;

/// <summary>
/// Marks a concrete test class that runs only where an environment variable is set (a real endpoint). Its
/// <see cref="TargetFactAttribute"/> and <see cref="TargetTheoryAttribute"/> tests, inherited ones included, are reported
/// as skipped with <see cref="Reason"/> elsewhere. A plain <c>[Fact]</c> cannot do this: the attribute sits on the abstract
/// class's method and is the same for every concrete class.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class RequiresEnvironmentAttribute(string variable, string reason) : Attribute
{
    public string Variable { get; } = variable;

    public string Reason { get; } = reason;

    /// <summary>Why the tests of <paramref name="testMethod"/>'s class are skipped here, or null when they run.</summary>
    internal static string? SkipReasonFor(ITestMethod testMethod)
    {
        var name = typeof(RequiresEnvironmentAttribute).AssemblyQualifiedName!;
        foreach (var attribute in testMethod.TestClass.Class.GetCustomAttributes(name))
        {
            if (attribute is IReflectionAttributeInfo { Attribute: RequiresEnvironmentAttribute required }
                && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(required.Variable)))
            {
                return required.Reason;
            }
        }

        return null;
    }
}

/// <summary>A fact of a target-store test class: skipped where the concrete class's <see cref="RequiresEnvironmentAttribute"/> is not met.</summary>
[XunitTestCaseDiscoverer("Rollout.Storage.Cosmos.Tests.TargetFactDiscoverer", "Rollout.Storage.Cosmos.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class TargetFactAttribute : FactAttribute;

/// <summary>A theory of a target-store test class: skipped where the concrete class's <see cref="RequiresEnvironmentAttribute"/> is not met.</summary>
[XunitTestCaseDiscoverer("Rollout.Storage.Cosmos.Tests.TargetTheoryDiscoverer", "Rollout.Storage.Cosmos.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class TargetTheoryAttribute : TheoryAttribute;

public sealed class TargetFactDiscoverer(IMessageSink sink) : FactDiscoverer(sink)
{
    public override IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute) =>
        RequiresEnvironmentAttribute.SkipReasonFor(testMethod) is null
            ? base.Discover(discoveryOptions, testMethod, factAttribute)
            : [new SkippedByEnvironmentTestCase(DiagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod)];
}

public sealed class TargetTheoryDiscoverer(IMessageSink sink) : TheoryDiscoverer(sink)
{
    public override IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo theoryAttribute) =>
        RequiresEnvironmentAttribute.SkipReasonFor(testMethod) is null
            ? base.Discover(discoveryOptions, testMethod, theoryAttribute)
            : [new SkippedByEnvironmentTestCase(DiagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod)];
}

/// <summary>One skipped test case for a test method (a theory's too, as xunit reports a skipped theory), with the class's reason.</summary>
public sealed class SkippedByEnvironmentTestCase : XunitTestCase
{
    [EditorBrowsable(EditorBrowsableState.Never)]
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SkippedByEnvironmentTestCase()
    {
    }

    public SkippedByEnvironmentTestCase(IMessageSink sink, TestMethodDisplay display, TestMethodDisplayOptions displayOptions, ITestMethod testMethod)
        : base(sink, display, displayOptions, testMethod)
    {
    }

    protected override string GetSkipReason(IAttributeInfo factAttribute) =>
        RequiresEnvironmentAttribute.SkipReasonFor(TestMethod) ?? base.GetSkipReason(factAttribute);
}
