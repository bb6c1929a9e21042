namespace Rollout.Core.Spec;

/// <summary>One thing wrong with a spec: where (a JSON path such as <c>$.phases[1].exposure</c>), what, and how to fix it.</summary>
/// <param name="Path">JSON path of the offending value; <c>$</c> for the whole document.</param>
/// <param name="Message">What is wrong.</param>
/// <param name="Hint">How to fix it.</param>
public sealed record SpecProblem(string Path, string Message, string Hint)
{
    /// <inheritdoc />
    public override string ToString() => $"{Path}: {Message} ({Hint})";
}

/// <summary>The outcome of loading a spec: the spec when it is valid, otherwise every problem found.</summary>
public sealed record SpecLoadResult
{
    /// <summary>The spec; null when any problem was found.</summary>
    public RolloutSpec? Spec { get; init; }

    /// <summary>Every problem, in document order as far as possible.</summary>
    public IReadOnlyList<SpecProblem> Problems { get; init; } = [];

    /// <summary>True when there is a spec and no problem.</summary>
    public bool IsValid => Spec is not null && Problems.Count == 0;
}
