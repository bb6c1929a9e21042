using Rollout.Orchestration;

namespace Rollout.Orchestration.Tests;

public sealed class ArchitectureTests
{
    [Fact]
    public void The_orchestration_is_engine_agnostic_it_references_the_core_and_the_Durable_Task_SDK_only()
    {
        var references = typeof(RolloutOrchestrator).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();

        Assert.Contains("Rollout.Core", references);
        Assert.Contains("Microsoft.DurableTask.Abstractions", references);
        var offending = references.Where(r =>
            r.StartsWith("Rollout.Storage", StringComparison.Ordinal) ||
            r.StartsWith("Microsoft.Data", StringComparison.Ordinal) ||
            r.StartsWith("DurableTask.", StringComparison.Ordinal) ||
            r.StartsWith("Azure.", StringComparison.Ordinal) ||
            r.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) ||
            r.StartsWith("Grpc", StringComparison.Ordinal)).ToArray();
        Assert.Empty(offending);
    }
}
