using System.Text.RegularExpressions;

namespace Rollout.Core.Spec;

/// <summary>
/// Rules for names that reach SQL, Cosmos DB or orchestration ids. A spec may only name plain identifiers, so
/// nothing from a spec can change the meaning of a statement; adapters still quote every identifier.
/// </summary>
public static partial class Identifiers
{
    /// <summary>Longest SQL identifier SQL Server accepts.</summary>
    public const int MaxSqlIdentifierLength = 128;

    /// <summary>True for a plain SQL identifier: a letter or underscore, then letters, digits or underscores.</summary>
    /// <param name="name">Candidate identifier.</param>
    public static bool IsSqlIdentifier(string? name) =>
        name is { Length: > 0 and <= MaxSqlIdentifierLength } && SqlIdentifierRegex().IsMatch(name);

    /// <summary>True for a feature key: lower-case letters, digits and inner dashes, at most 63 characters.</summary>
    /// <param name="feature">Candidate key.</param>
    public static bool IsFeatureKey(string? feature) => feature is not null && FeatureRegex().IsMatch(feature);

    /// <summary>True for a Cosmos DB container name we accept: letters, digits, dashes and underscores.</summary>
    /// <param name="name">Candidate container name.</param>
    public static bool IsContainerName(string? name) => name is not null && ContainerRegex().IsMatch(name);

    /// <summary>True for a phase name usable on a command line (<c>--inject …@phase:canary</c>).</summary>
    /// <param name="name">Candidate phase name.</param>
    public static bool IsPhaseName(string? name) => name is not null && PhaseRegex().IsMatch(name);

    /// <summary>True for one segment of a target field path (a JSON property name we accept).</summary>
    /// <param name="segment">Candidate segment.</param>
    public static bool IsFieldSegment(string? segment) => segment is not null && FieldSegmentRegex().IsMatch(segment);

    /// <summary>Quotes a validated identifier for SQL Server: <c>[name]</c>.</summary>
    /// <param name="identifier">A name that passed <see cref="IsSqlIdentifier"/>.</param>
    public static string QuoteSqlServer(string identifier) => $"[{RequireSqlIdentifier(identifier)}]";

    /// <summary>Quotes a validated identifier for SQLite: <c>"name"</c>.</summary>
    /// <param name="identifier">A name that passed <see cref="IsSqlIdentifier"/>.</param>
    public static string QuoteSqlite(string identifier) => $"\"{RequireSqlIdentifier(identifier)}\"";

    private static string RequireSqlIdentifier(string identifier) =>
        IsSqlIdentifier(identifier)
            ? identifier
            : throw new ArgumentException($"'{identifier}' is not a plain SQL identifier.", nameof(identifier));

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex SqlIdentifierRegex();

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex FeatureRegex();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", RegexOptions.CultureInvariant)]
    private static partial Regex ContainerRegex();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex PhaseRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,254}$", RegexOptions.CultureInvariant)]
    private static partial Regex FieldSegmentRegex();
}
