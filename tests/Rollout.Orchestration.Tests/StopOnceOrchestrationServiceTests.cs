using System.Reflection;
using DurableTask.Core;
using Rollout.Orchestration.Hosting;

namespace Rollout.Orchestration.Tests;

/// <summary>
/// The sidecar and our host both stop the backend; two concurrent stops of the Azure Storage backend crashed a CI
/// test host (a NullReferenceException in its lease manager, thrown from the sidecar's async void handler).
/// </summary>
public sealed class StopOnceOrchestrationServiceTests
{
    [Fact]
    public async Task Concurrent_and_repeated_stops_stop_the_backend_once_as_the_first_caller_asked()
    {
        var backend = DispatchProxy.Create<IOrchestrationService, RecordingBackend>();
        var recorder = (RecordingBackend)(object)backend;
        var service = new StopOnceOrchestrationService(backend);

        var first = service.StopAsync(isForced: true);
        var others = Enumerable.Range(0, 7).Select(_ => Task.Run(service.StopAsync)).ToArray();
        await Task.Delay(50);
        Assert.All(others, t => Assert.False(t.IsCompleted)); // they wait for the one stop in progress
        recorder.Release.SetResult();
        await Task.WhenAll([first, .. others]);
        await service.StopAsync();

        Assert.Equal([true], recorder.Stops);
        await service.StartAsync();
        Assert.Equal(["StopAsync", "StartAsync"], recorder.Calls.ToArray());
    }

    public class RecordingBackend : DispatchProxy
    {
        public List<bool> Stops { get; } = [];

        public List<string> Calls { get; } = [];

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            lock (Calls)
            {
                Calls.Add(targetMethod!.Name);
                if (targetMethod.Name == nameof(IOrchestrationService.StopAsync))
                {
                    Stops.Add(args is { Length: 1 } && (bool)args[0]!);
                    return Release.Task; // a slow stop: every other caller arrives while it runs
                }
            }

            return Task.CompletedTask;
        }
    }
}
