using System.Text;
using System.Text.Json;

namespace Rollout.Core.Spec;

/// <summary>One way a spec differs from another in what identifies its data path.</summary>
/// <param name="Path">JSON path of the setting, for example <c>$.target.container</c>.</param>
/// <param name="Served">The value in the spec served (compact JSON, or <c>(none)</c>).</param>
/// <param name="Other">The value in the other spec.</param>
public sealed record SpecDifference(string Path, string Served, string Other);

/// <summary>Compares specs by the part that a deployment is wired to: which data, where from, where to, and how it maps.</summary>
public static class SpecDifferences
{
    private const string None = "(none)";

    /// <summary>
    /// Where <paramref name="other"/> differs from <paramref name="served"/> in the data path: feature, salt, source table
    /// and key, target container and partition key, and the mapping (field by field; the order of fields does not
    /// matter, source column names compare case-insensitively as SQL does). Phases, budgets, reconciliation and gate
    /// settings belong to the rollout and may differ.
    /// </summary>
    /// <param name="served">The spec a host serves.</param>
    /// <param name="other">The spec asked for.</param>
    /// <param name="sourceTable">
    /// The source store's name for a table, so that two spellings of one table compare equal (on SQL Server, <c>Orders</c>
    /// is <c>dbo.Orders</c>); by default the names are compared as written, case-insensitively.
    /// </param>
    /// <returns>Every difference, in a stable order; empty when both name the same data path.</returns>
    public static IReadOnlyList<SpecDifference> DataPath(RolloutSpec served, RolloutSpec other, Func<string, string>? sourceTable = null)
    {
        ArgumentNullException.ThrowIfNull(served);
        ArgumentNullException.ThrowIfNull(other);
        var differences = new List<SpecDifference>();
        void Compare(string path, string? a, string? b, StringComparison comparison)
        {
            if (!string.Equals(a ?? string.Empty, b ?? string.Empty, comparison))
            {
                differences.Add(new SpecDifference(path, Quote(a), Quote(b)));
            }
        }

        Compare("$.feature", served.Feature, other.Feature, StringComparison.Ordinal);
        Compare("$.salt", served.Salt, other.Salt, StringComparison.Ordinal);
        if (!string.Equals(sourceTable?.Invoke(served.Source.Table) ?? served.Source.Table, sourceTable?.Invoke(other.Source.Table) ?? other.Source.Table, StringComparison.OrdinalIgnoreCase))
        {
            differences.Add(new SpecDifference("$.source.table", Quote(served.Source.Table), Quote(other.Source.Table)));
        }
        if (!served.Source.Key.SequenceEqual(other.Source.Key, StringComparer.OrdinalIgnoreCase))
        {
            differences.Add(new SpecDifference("$.source.key", List(served.Source.Key), List(other.Source.Key)));
        }

        Compare("$.target.container", served.Target.Container, other.Target.Container, StringComparison.Ordinal);
        Compare("$.target.partitionKey", served.Target.PartitionKey, other.Target.PartitionKey, StringComparison.Ordinal);
        foreach (var field in served.Mapping.Keys.Union(other.Mapping.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var a = served.Mapping.GetValueOrDefault(field);
            var b = other.Mapping.GetValueOrDefault(field);
            if (!SameRule(a, b))
            {
                differences.Add(new SpecDifference($"$.mapping.{field}", Rule(a), Rule(b)));
            }
        }

        return differences;
    }

    private static bool SameRule(FieldRuleSpec? a, FieldRuleSpec? b) =>
        a is null || b is null
            ? a is null && b is null
            : string.Equals(a.From, b.From, StringComparison.OrdinalIgnoreCase)
              && string.Equals(a.Convert, b.Convert, StringComparison.Ordinal)
              && string.Equals(a.Template, b.Template, StringComparison.Ordinal)
              && a.Required == b.Required
              && string.Equals(a.Const?.GetRawText(), b.Const?.GetRawText(), StringComparison.Ordinal);

    private static string Quote(string? value) => string.IsNullOrEmpty(value) ? None : JsonSerializer.Serialize(value, SpecDifferenceJsonContext.Default.String);

    private static string List(IReadOnlyList<string> values) => JsonSerializer.Serialize(values.ToArray(), SpecDifferenceJsonContext.Default.StringArray);

    private static string Rule(FieldRuleSpec? rule)
    {
        if (rule is null)
        {
            return None;
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            new FieldRuleSpecJsonConverter().Write(writer, rule, SpecDifferenceJsonContext.Default.Options);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class SpecDifferenceJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
