using System.Reflection;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;

namespace Rollout.Functions.Tests;

/// <summary>The activity wrappers hand the activity classes the orchestration's instance id, not the invocation's.</summary>
public sealed class RolloutDurableFunctionsTests
{
    [Fact]
    public async Task An_activity_runs_with_its_name_and_the_orchestrations_instance_id_and_the_apps_services()
    {
        using var services = new ServiceCollection().AddSingleton(new Greeting("hello")).BuildServiceProvider();

        var result = await RolloutDurableFunctions.Run<ProbeActivity, string, string>(services, "rollout:orders-v2", "input-1");

        Assert.Equal("ProbeActivity|rollout:orders-v2|hello|input-1", result);
        await Assert.ThrowsAsync<ArgumentException>(() => RolloutDurableFunctions.Run<ProbeActivity, string, string>(services, string.Empty, "x"));
    }

    [Fact]
    public void Every_activity_wrapper_takes_the_instance_id_from_the_trigger_binding_data()
    {
        var wrappers = typeof(RolloutDurableFunctions).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.GetParameters().Any(p => p.GetCustomAttribute<ActivityTriggerAttribute>() is not null))
            .ToArray();

        Assert.Equal(4, wrappers.Length);
        Assert.All(wrappers, m => Assert.Contains(m.GetParameters(), p => p.Name == "instanceId" && p.ParameterType == typeof(string)));
    }

    internal sealed record Greeting(string Text);

    internal sealed class ProbeActivity(Greeting greeting) : TaskActivity<string, string>
    {
        public override Task<string> RunAsync(TaskActivityContext context, string input) =>
            Task.FromResult($"{context.Name}|{context.InstanceId}|{greeting.Text}|{input}");
    }
}
