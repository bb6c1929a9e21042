using Rollout.Core.DataPath;

namespace Rollout.Storage.Sqlite.Tests;

/// <summary>
/// The real SQLite target behind a decorator that refuses writes the way a remote store does (an id clash, an oversized
/// document, a 412 race lost every time): a batch holding a refused key fails as a whole, as a transactional batch would.
/// </summary>
internal sealed class RefusingTarget(ITargetStore inner) : ITargetStore
{
    /// <summary>Keys refused every time.</summary>
    public HashSet<string> Poison { get; } = new(StringComparer.Ordinal);

    /// <summary>When true, every write is refused (the target is down).</summary>
    public bool Down { get; set; }

    /// <summary>How many more calls fail whatever they hold (a transient failure).</summary>
    public int TransientFailures { get; set; }

    /// <summary>Called before each call reaches the real store (after the checks above).</summary>
    public Func<IReadOnlyList<TargetWrite>, CancellationToken, Task>? BeforeApply { get; set; }

    public int Calls { get; private set; }

    public async Task<ApplyResult> ApplyAsync(IReadOnlyList<TargetWrite> writes, CancellationToken cancellationToken)
    {
        Calls++;
        if (Down)
        {
            throw new HttpRequestException("Service Unavailable (503): the target is down");
        }

        if (TransientFailures > 0)
        {
            TransientFailures--;
            throw new TimeoutException("Request timed out (transient)");
        }

        if (writes.FirstOrDefault(w => Poison.Contains(w.Key.Text)) is { } refused)
        {
            throw new InvalidOperationException($"Conflict (409): a document with id '{refused.Key.Text}' already exists in another partition");
        }

        if (BeforeApply is { } hook)
        {
            await hook(writes, cancellationToken);
        }

        return await inner.ApplyAsync(writes, cancellationToken);
    }

    public Task<TargetDocument?> GetAsync(SourceKey key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);
}
