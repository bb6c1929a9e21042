using System.Globalization;
using Rollout.Core.Translation;

namespace Rollout.Core.Spec;

/// <summary>The rules a well-shaped spec must also follow. Returns every problem; never throws for user error.</summary>
public static class RolloutSpecValidator
{
    /// <summary>Longest gate timeout accepted: a request should not wait longer for the new path.</summary>
    public static readonly TimeSpan MaxGateTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Validates a deserialized spec.</summary>
    /// <param name="spec">The spec.</param>
    public static IReadOnlyList<SpecProblem> Validate(RolloutSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var problems = new List<SpecProblem>();

        if (!Identifiers.IsFeatureKey(spec.Feature))
        {
            problems.Add(new("$.feature", $"'{spec.Feature}' is not a feature key.",
                "Use 1 to 63 lower-case letters, digits and inner dashes, for example \"orders-v2\"."));
        }

        if (spec.Salt is { Length: > 128 })
        {
            problems.Add(new("$.salt", "The salt is longer than 128 characters.", "Use a short string; it only reshuffles buckets."));
        }

        ValidateSource(spec.Source, problems);
        ValidateTarget(spec.Target, problems);
        problems.AddRange(ValidateMapping(spec.Mapping, spec.Target.PartitionKey, "$.mapping"));
        ValidatePhases(spec.Phases, problems);
        ValidateBudgets(spec.Budgets, problems);
        ValidateReconciliation(spec.Reconciliation, problems);
        ValidateGate(spec.Gate, problems);
        return problems;
    }

    private static void ValidateSource(SourceSpec source, List<SpecProblem> problems)
    {
        var parts = source.Table.Split('.');
        if (parts.Length > 2 || !parts.All(Identifiers.IsSqlIdentifier))
        {
            problems.Add(new("$.source.table", $"'{source.Table}' is not a plain table name.",
                "Write Table or Schema.Table using letters, digits and underscores only (no brackets, quotes, spaces or semicolons)."));
        }

        if (source.Key.Count == 0)
        {
            problems.Add(new("$.source.key", "No key column is given.", "List the primary key columns, for example [\"OrderId\"]."));
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < source.Key.Count; i++)
        {
            var column = source.Key[i];
            if (!Identifiers.IsSqlIdentifier(column))
            {
                problems.Add(new($"$.source.key[{i}]", $"'{column}' is not a plain column name.", "Use letters, digits and underscores, starting with a letter."));
            }
            else if (!seen.Add(column))
            {
                problems.Add(new($"$.source.key[{i}]", $"Key column '{column}' is listed twice.", "List each key column once."));
            }
        }
    }

    private static void ValidateTarget(TargetSpec target, List<SpecProblem> problems)
    {
        if (!Identifiers.IsContainerName(target.Container))
        {
            problems.Add(new("$.target.container", $"'{target.Container}' is not a container name.",
                "Use letters, digits, dashes and underscores, starting with a letter or digit."));
        }

        var segments = target.PartitionKey.Split('/');
        if (!target.PartitionKey.StartsWith('/') || segments.Length < 2 || !segments.Skip(1).All(Identifiers.IsFieldSegment))
        {
            problems.Add(new("$.target.partitionKey", $"'{target.PartitionKey}' is not a partition key path.",
                "Write a path such as \"/customerId\" or \"/customer/id\"."));
        }
    }

    /// <summary>Rules for a mapping; shared with <see cref="DocumentTranslator.Compile"/>.</summary>
    /// <param name="mapping">Target path to rule.</param>
    /// <param name="partitionKeyPath">The target's partition key path.</param>
    /// <param name="path">JSON path of the mapping.</param>
    public static IReadOnlyList<SpecProblem> ValidateMapping(IReadOnlyDictionary<string, FieldRuleSpec> mapping, string partitionKeyPath, string path)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(partitionKeyPath);
        var problems = new List<SpecProblem>();
        if (!mapping.ContainsKey(DocumentTranslator.IdField))
        {
            problems.Add(new(path, "The mapping has no \"id\".",
                "Map \"id\" from the key column, for example \"id\": \"OrderId\", or a template such as { \"template\": \"{CustomerId}-{OrderId}\" }."));
        }

        var partitionField = DocumentTranslator.PartitionKeyPathToField(partitionKeyPath);
        if (partitionField.Length > 0 && !mapping.ContainsKey(partitionField))
        {
            problems.Add(new(path, $"The mapping does not produce the partition key '{partitionKeyPath}'.",
                $"Add \"{partitionField}\": \"<SourceColumn>\" to the mapping."));
        }

        var fields = new HashSet<string>(mapping.Keys, StringComparer.Ordinal);
        foreach (var (field, rule) in mapping)
        {
            var fieldPath = RolloutSpecLoader.ChildPath(path, field);
            var segments = field.Split('.');
            if (!segments.All(Identifiers.IsFieldSegment))
            {
                problems.Add(new(fieldPath, $"'{field}' is not a field path.", "Use names of letters, digits and underscores, joined by dots for nesting (\"shipping.city\")."));
                continue;
            }

            for (var i = 1; i < segments.Length; i++)
            {
                var parent = string.Join('.', segments[..i]);
                if (fields.Contains(parent))
                {
                    problems.Add(new(fieldPath, $"'{field}' is nested under '{parent}', which is itself mapped to a value.", $"Map either '{parent}' or fields inside it, not both."));
                }
            }

            ValidateRule(field, rule, fieldPath, partitionField, problems);
        }

        return problems;
    }

    private static void ValidateRule(string field, FieldRuleSpec rule, string fieldPath, string partitionField, List<SpecProblem> problems)
    {
        var sources = (rule.From is not null ? 1 : 0) + (rule.Const is not null ? 1 : 0) + (rule.Template is not null ? 1 : 0);
        if (sources != 1)
        {
            problems.Add(new(fieldPath,
                sources == 0 ? $"'{field}' references no source column." : $"'{field}' has more than one of from, const and template.",
                "Give exactly one of \"from\": \"Column\", \"template\": \"{ColumnA}-{ColumnB}\" or \"const\": value."));
            return;
        }

        if (rule.From is { } from && !Identifiers.IsSqlIdentifier(from))
        {
            problems.Add(new(fieldPath, $"'{from}' is not a plain column name.", "Use letters, digits and underscores, starting with a letter."));
        }

        if (rule.Convert is { } convert)
        {
            if (rule.From is null)
            {
                problems.Add(new(fieldPath, "'convert' only applies to a value read with 'from'.", "Remove 'convert' or read the value with 'from'."));
            }
            else if (Conversions.Describe(convert) is null)
            {
                problems.Add(new(RolloutSpecLoader.ChildPath(fieldPath, "convert"), $"Unknown conversion '{convert}'.",
                    "Use one of: " + string.Join(", ", Conversions.Names) + "."));
            }
        }

        if (rule.Template is { } template)
        {
            var columns = DocumentTranslator.TemplateParts(template).Where(p => p.IsColumn).Select(p => p.Text).ToArray();
            if (columns.Length == 0)
            {
                problems.Add(new(RolloutSpecLoader.ChildPath(fieldPath, "template"), "The template references no source column.", "Put column names in braces, for example \"{CustomerId}-{OrderId}\", or use 'const'."));
            }

            foreach (var column in columns.Where(c => !Identifiers.IsSqlIdentifier(c)))
            {
                problems.Add(new(RolloutSpecLoader.ChildPath(fieldPath, "template"), $"'{{{column}}}' is not a plain column name.", "Use letters, digits and underscores inside the braces."));
            }

            if (template.Count(c => c == '{') != template.Count(c => c == '}'))
            {
                problems.Add(new(RolloutSpecLoader.ChildPath(fieldPath, "template"), "The template's braces do not pair up.", "Close every '{' with a '}'."));
            }
        }

        if (rule.Const is not null && field == DocumentTranslator.IdField)
        {
            problems.Add(new(fieldPath, "\"id\" is a constant, so every row would overwrite the same document.", "Map \"id\" from the key column or a template of key columns."));
        }

        if (rule.Const is { ValueKind: System.Text.Json.JsonValueKind.Null } && (field == partitionField || rule.Required))
        {
            problems.Add(new(fieldPath, $"'{field}' is required but its constant is null.", "Give a non-null constant."));
        }
    }

    private static void ValidatePhases(IReadOnlyList<PhaseSpec> phases, List<SpecProblem> problems)
    {
        if (phases.Count == 0)
        {
            problems.Add(new("$.phases", "There are no phases.", "Add at least one phase, for example { \"name\": \"full\", \"exposure\": 100, \"bake\": \"PT1H\" }."));
            return;
        }

        var names = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        decimal? previous = null;
        for (var i = 0; i < phases.Count; i++)
        {
            var phase = phases[i];
            var at = $"$.phases[{i}]";
            if (!Identifiers.IsPhaseName(phase.Name))
            {
                problems.Add(new($"{at}.name", $"'{phase.Name}' is not a phase name.", "Use letters, digits, dashes and underscores, for example \"canary\"."));
            }
            else if (names.TryGetValue(phase.Name, out var first))
            {
                problems.Add(new($"{at}.name", $"Phase name '{phase.Name}' is already used by phase {first}.", "Give every phase a different name."));
            }
            else
            {
                names.Add(phase.Name, i);
            }

            if (phase.Exposure is < 0 or > 100)
            {
                problems.Add(new($"{at}.exposure", $"Exposure {Show(phase.Exposure)} is outside 0..100.", "Exposure is a percent of subjects: 0 to 100."));
            }
            else if (phase.Exposure * 1000m != decimal.Truncate(phase.Exposure * 1000m))
            {
                problems.Add(new($"{at}.exposure", $"Exposure {Show(phase.Exposure)} has more than three decimals.", "Round to 0.001 (one bucket in 100,000)."));
            }
            else if (previous is { } before && phase.Exposure < before)
            {
                problems.Add(new($"{at}.exposure", $"Exposure {Show(phase.Exposure)} is lower than the previous phase's {Show(before)}.",
                    "Phases only widen exposure; to go back, roll back."));
            }

            previous = phase.Exposure is >= 0 and <= 100 ? Math.Max(previous ?? 0, phase.Exposure) : previous;

            if (phase.Reads == ReadMode.Live && phase.Exposure == 0)
            {
                problems.Add(new($"{at}.reads", "Live reads at 0% exposure serve nobody from the target.", "Use \"shadow\" at 0%, or raise the exposure."));
            }

            Duration(phase.Bake, $"{at}.bake", allowZero: true, problems);
            if (phase.Approval is { } approval)
            {
                Duration(approval.Timeout, $"{at}.approval.timeout", allowZero: false, problems);
            }
        }
    }

    private static void ValidateBudgets(BudgetsSpec budgets, List<SpecProblem> problems)
    {
        Fraction(budgets.MaxErrorRateIncrease, "$.budgets.maxErrorRateIncrease", "0.005 allows half a percentage point more errors than legacy", problems);
        Fraction(budgets.MaxDriftRate, "$.budgets.maxDriftRate", "0.0001 allows one drifted key in 10,000", problems);
        if (!(budgets.MaxP95LatencyMs > 0) || !double.IsFinite(budgets.MaxP95LatencyMs))
        {
            problems.Add(new("$.budgets.maxP95LatencyMs", $"{Show(budgets.MaxP95LatencyMs)} is not a positive latency.", "Give milliseconds, for example 250."));
        }

        if (budgets.MaxP95LatencyIncreaseMs is { } increase && (!(increase >= 0) || !double.IsFinite(increase)))
        {
            problems.Add(new("$.budgets.maxP95LatencyIncreaseMs", $"{Show(increase)} is not a non-negative latency.", "Give milliseconds, for example 50, or leave it out."));
        }

        if (budgets.MinSamples < 1)
        {
            problems.Add(new("$.budgets.minSamples", $"{budgets.MinSamples} samples cannot support a verdict.", "Use at least 1; a few hundred is typical."));
        }

        if (budgets.MaxBakeExtensions < 0)
        {
            problems.Add(new("$.budgets.maxBakeExtensions", "A negative number of extensions.", "Use 0 to halt at once on insufficient data, or a small number such as 3."));
        }

        Duration(budgets.ExtendBakeBy, "$.budgets.extendBakeBy", allowZero: false, problems);
        Duration(budgets.EvaluateEvery, "$.budgets.evaluateEvery", allowZero: false, problems);
    }

    private static void ValidateReconciliation(ReconciliationSpec reconciliation, List<SpecProblem> problems)
    {
        Duration(reconciliation.Every, "$.reconciliation.every", allowZero: false, problems);
        if (reconciliation.MaxRowsPerSecond < 1)
        {
            problems.Add(new("$.reconciliation.maxRowsPerSecond", $"{reconciliation.MaxRowsPerSecond} rows/s would never finish.", "Use a positive rate such as 5000."));
        }
    }

    private static void ValidateGate(GateSpec gate, List<SpecProblem> problems)
    {
        if (Duration(gate.Timeout, "$.gate.timeout", allowZero: false, problems) is { } timeout && timeout > MaxGateTimeout)
        {
            problems.Add(new("$.gate.timeout", $"{gate.Timeout} is longer than {IsoDuration.Format(MaxGateTimeout)}.", "A request should fall back quickly; use seconds, for example PT2S."));
        }

        Fraction(gate.ShadowSampleRatio, "$.gate.shadowSampleRatio", "1 compares every shadow read, 0.1 one in ten", problems);
    }

    private static TimeSpan? Duration(string text, string path, bool allowZero, List<SpecProblem> problems)
    {
        if (!IsoDuration.TryParse(text, out var value))
        {
            problems.Add(new(path, $"'{text}' is not an ISO-8601 duration.", "Write for example PT30S, PT10M, PT1H30M or P1D (years and months are not allowed)."));
            return null;
        }

        if (!allowZero && value <= TimeSpan.Zero)
        {
            problems.Add(new(path, $"'{text}' is zero.", "Give a positive duration such as PT5M."));
            return null;
        }

        return value;
    }

    private static void Fraction(double value, string path, string example, List<SpecProblem> problems)
    {
        if (!(value is >= 0 and <= 1))
        {
            problems.Add(new(path, $"{Show(value)} is not a fraction between 0 and 1.", $"Give a fraction: {example}."));
        }
    }

    private static string Show(decimal value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);
}
