using System.Globalization;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace Rollout.Orchestration;

/// <summary>A second rollout of a feature was asked for while the first is still live.</summary>
public sealed class RolloutAlreadyRunningException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public RolloutAlreadyRunningException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    public RolloutAlreadyRunningException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Message.</param>
    /// <param name="innerException">Cause.</param>
    public RolloutAlreadyRunningException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Starts rollouts, reads their status and sends operator commands, over any Durable Task client (the Durable
/// Task SDK worker's, or Durable Functions').
/// </summary>
/// <param name="client">The Durable Task client.</param>
public sealed class RolloutControl(DurableTaskClient client)
{
    private static readonly OrchestrationRuntimeStatus[] LiveStatuses =
        [OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Suspended];

    /// <summary>How often <see cref="SendAsync"/> looks for the answer.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Starts the rollout of a feature; refused while another rollout of the feature is live.</summary>
    /// <param name="input">The orchestration input (see <see cref="RolloutInput.FromSpec"/>).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The instance id.</returns>
    public async Task<string> StartAsync(RolloutInput input, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        var id = RolloutOrchestrator.InstanceIdFor(input.Feature);
        await ThrowIfLiveAsync(input.Feature, id, null, cancellationToken);
        try
        {
            return await client.ScheduleNewOrchestrationInstanceAsync(
                nameof(RolloutOrchestrator), input, new StartOrchestrationOptions(id) { Version = RolloutOrchestrator.OrchestrationVersion }.WithDedupeStatuses(LiveStatuses), cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Two starts raced: the loser is told who won.
            await ThrowIfLiveAsync(input.Feature, id, e, cancellationToken);
            throw;
        }
    }

    /// <summary>The status of a feature's rollout, or null when none was ever started.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<RolloutSnapshot?> GetStatusAsync(string feature, CancellationToken cancellationToken = default)
    {
        var metadata = await client.GetInstanceAsync(RolloutOrchestrator.InstanceIdFor(feature), getInputsAndOutputs: true, cancellationToken);
        return metadata is null ? null : RolloutSnapshot.From(metadata);
    }

    /// <summary>Sends an operator command and waits until the rollout has answered it.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="command">approve, reject, pause, resume, rollback or skip-bake.</param>
    /// <param name="by">Who.</param>
    /// <param name="comment">Optional comment.</param>
    /// <param name="snapshot">For approve: the status snapshot the approver looked at.</param>
    /// <param name="timeout">How long to wait for the answer.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<CommandAnswer> SendAsync(string feature, string command, string by, string? comment = null, long? snapshot = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(by);
        var eventName = RolloutEvents.EventFor(command);
        var id = RolloutOrchestrator.InstanceIdFor(feature);
        var metadata = await client.GetInstanceAsync(id, getInputsAndOutputs: false, cancellationToken);
        if (metadata is null || !LiveStatuses.Contains(metadata.RuntimeStatus))
        {
            return new CommandAnswer(string.Empty, command, false, metadata is null
                ? $"no rollout of '{feature}' was started"
                : $"the rollout of '{feature}' is not running ({metadata.RuntimeStatus}); start a new one with `rollout run`");
        }

        var commandId = Guid.NewGuid().ToString("N");
        var payload = new OperatorCommand(commandId, command, by, comment, snapshot);
        var sentTo = (await GetStatusAsync(feature, cancellationToken))?.View?.Generation ?? 0;
        await client.RaiseEventAsync(id, eventName, payload, cancellationToken);
        var sentAt = DateTimeOffset.UtcNow;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            while (true)
            {
                var status = await GetStatusAsync(feature, deadline.Token);
                if (status?.View is { } view && view.RecentCommands.Append(view.LastCommand).FirstOrDefault(a => a?.Id == commandId) is { } answer)
                {
                    return answer;
                }

                if (status is not null && !LiveStatuses.Contains(status.RuntimeStatus))
                {
                    return new CommandAnswer(commandId, command, false, $"the rollout ended ({status.RuntimeStatus}) before it answered");
                }

                // An event that reaches a generation just as it continues as new can be lost with it: send it again
                // (same id: the rollout answers a command once) when a newer generation has not answered it.
                if (status?.View is { } current && current.Generation > sentTo && DateTimeOffset.UtcNow - sentAt > TimeSpan.FromSeconds(1))
                {
                    sentTo = current.Generation;
                    sentAt = DateTimeOffset.UtcNow;
                    await client.RaiseEventAsync(id, eventName, payload, deadline.Token);
                }

                await Task.Delay(PollInterval, deadline.Token);
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && (e is OperationCanceledException || deadline.IsCancellationRequested))
        {
            // Our deadline ended the wait, or a status read or resend in flight when it fired (a gRPC client reports
            // that as its own cancelled call, not as OperationCanceledException): either way, not answered in time.
            throw new TimeoutException(string.Create(CultureInfo.InvariantCulture,
                $"The rollout of '{feature}' did not answer '{command}' within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds:0} s. It is delivered and will be answered when the rollout next runs; check `rollout status {feature}`."));
        }
    }

    /// <summary>Waits until the rollout of a feature ends and returns how.</summary>
    /// <param name="feature">Feature key.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<RolloutSnapshot> WaitForEndAsync(string feature, CancellationToken cancellationToken = default)
    {
        var metadata = await client.WaitForInstanceCompletionAsync(RolloutOrchestrator.InstanceIdFor(feature), getInputsAndOutputs: true, cancellationToken);
        return RolloutSnapshot.From(metadata);
    }

    private async Task ThrowIfLiveAsync(string feature, string id, Exception? cause, CancellationToken cancellationToken)
    {
        var existing = await client.GetInstanceAsync(id, getInputsAndOutputs: false, cancellationToken);
        if (existing is not null && LiveStatuses.Contains(existing.RuntimeStatus))
        {
            var message = string.Create(CultureInfo.InvariantCulture,
                $"A rollout of '{feature}' is already live ({existing.RuntimeStatus.ToString().ToLowerInvariant()}, instance '{id}', started {existing.CreatedAt:u}). One feature has one live rollout: wait for it to end, or stop it with `rollout rollback {feature}`.");
            throw cause is null ? new RolloutAlreadyRunningException(message) : new RolloutAlreadyRunningException(message, cause);
        }
    }
}

/// <summary>What the Durable Task runtime and the rollout itself say about a rollout.</summary>
/// <param name="InstanceId">Instance id.</param>
/// <param name="RuntimeStatus">The runtime's status (Running, Completed, Failed…).</param>
/// <param name="View">The rollout's own status, null before its first step.</param>
/// <param name="Result">How it ended, once it has.</param>
/// <param name="Failure">The failure message when the orchestration failed.</param>
public sealed record RolloutSnapshot(string InstanceId, OrchestrationRuntimeStatus RuntimeStatus, RolloutStatusView? View, RolloutResult? Result, string? Failure)
{
    /// <summary>From the runtime's metadata.</summary>
    /// <param name="metadata">Metadata read with inputs and outputs.</param>
    public static RolloutSnapshot From(OrchestrationMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        return new RolloutSnapshot(
            metadata.InstanceId,
            metadata.RuntimeStatus,
            metadata.SerializedCustomStatus is null ? null : metadata.ReadCustomStatusAs<RolloutStatusView>(),
            metadata.RuntimeStatus == OrchestrationRuntimeStatus.Completed && metadata.SerializedOutput is not null ? metadata.ReadOutputAs<RolloutResult>() : null,
            metadata.FailureDetails?.ErrorMessage);
    }
}
