using System.Globalization;
using System.Text.RegularExpressions;
using Rollout.Core.Spec;

namespace Rollout.Cli.Run;

/// <summary>How approvals are given during <c>rollout run</c>.</summary>
internal enum ApproveMode
{
    /// <summary>Approve at once, on the snapshot shown (demos, rehearsals).</summary>
    Auto,

    /// <summary>Ask in the terminal; without one, wait for <c>rollout approve</c> from another terminal.</summary>
    Prompt,
}

/// <summary>A fault injected into the new path during one phase.</summary>
/// <param name="Kind">error-rate, latency or drift.</param>
/// <param name="Value">Share (error-rate, drift) or milliseconds (latency).</param>
/// <param name="Phase">The phase it applies to.</param>
internal sealed partial record Injection(string Kind, double Value, string Phase)
{
    public const string Format = "error-rate=0.05@phase:canary, latency=+300ms@ramp or drift=0.01@ramp";

    public override string ToString() => Kind switch
    {
        "latency" => string.Create(CultureInfo.InvariantCulture, $"latency +{Value:0}ms in {Phase}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{Kind} {Value:0.####} in {Phase}"),
    };

    /// <summary>Parses one <c>--inject</c> value against the spec's phases; null and a message when it does not fit.</summary>
    public static (Injection? Injection, string? Problem) Parse(string text, RolloutSpec spec)
    {
        var match = Pattern().Match(text.Trim());
        if (!match.Success)
        {
            return (null, $"--inject '{text}' is not of the form KIND=VALUE@PHASE, for example {Format}");
        }

        var kind = match.Groups["kind"].Value.ToLowerInvariant();
        var raw = match.Groups["value"].Value;
        var phase = match.Groups["phase"].Value;
        if (spec.Phases.FirstOrDefault(p => p.Name == phase) is not { } target)
        {
            return (null, $"--inject '{text}': the spec has no phase '{phase}' (its phases: {string.Join(", ", spec.Phases.Select(p => p.Name))})");
        }

        if (kind is "error-rate" or "latency" && target.Exposure == 0)
        {
            return (null, $"--inject '{text}': {kind} acts on the new path's writes, and phase '{phase}' exposes nobody (0 %); inject it in an exposed phase, or use drift=…@{phase}");
        }

        switch (kind)
        {
            case "error-rate" or "drift":
                if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var share) || share is <= 0 or > 1)
                {
                    return (null, $"--inject '{text}': {kind} must be a share between 0 (exclusive) and 1, for example {kind}=0.05@{phase}");
                }

                return (new Injection(kind, share, phase), null);
            case "latency":
                var latency = LatencyPattern().Match(raw);
                if (!latency.Success)
                {
                    return (null, $"--inject '{text}': latency must be added milliseconds or seconds, for example latency=+300ms@{phase} or latency=+1s@{phase}");
                }

                var ms = double.Parse(latency.Groups["n"].Value, CultureInfo.InvariantCulture) * (latency.Groups["unit"].Value == "s" ? 1000 : 1);
                return ms is <= 0 or > 60_000
                    ? (null, $"--inject '{text}': latency must be above 0 and at most 60 s")
                    : (new Injection(kind, ms, phase), null);
            default:
                return (null, $"--inject '{text}': unknown fault '{kind}'; use error-rate, latency or drift ({Format})");
        }
    }

    [GeneratedRegex(@"^(?<kind>[A-Za-z-]+)=(?<value>[^@]+)@(phase:)?(?<phase>.+)$")]
    private static partial Regex Pattern();

    [GeneratedRegex(@"^\+?(?<n>[0-9]+(\.[0-9]+)?)(?<unit>ms|s)$")]
    private static partial Regex LatencyPattern();
}

/// <summary>Everything <c>rollout run</c> was asked to do, validated.</summary>
internal sealed record RunSettings(
    FileInfo SpecFile,
    RolloutSpec Spec,
    string Folder,
    int? Rows,
    int RequestsPerSecond,
    double Speed,
    ApproveMode Approve,
    IReadOnlyList<Injection> Injections,
    bool Json,
    double WriteShare = 0.3,
    bool Durable = false);
