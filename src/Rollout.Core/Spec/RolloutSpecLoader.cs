using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace Rollout.Core.Spec;

/// <summary>
/// Reads a spec and reports every problem at once. Three passes: the JSON must parse (else one problem with
/// line and column); its shape must match the source-generated contract (unknown properties, wrong kinds,
/// missing required values, each with its path), and what does not fit is pruned; then the rules of
/// <see cref="RolloutSpecValidator"/> run on the rest, so one run reports both kinds.
/// </summary>
public static class RolloutSpecLoader
{
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        AllowDuplicateProperties = false,
    };

    /// <summary>Loads a spec from JSON text.</summary>
    /// <param name="json">The document.</param>
    public static SpecLoadResult Load(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, nodeOptions: null, DocumentOptions);
        }
        catch (JsonException ex)
        {
            var line = (ex.LineNumber ?? 0) + 1;
            var column = (ex.BytePositionInLine ?? 0) + 1;
            return Failed(new SpecProblem(
                "$",
                $"The file is not valid JSON at line {line}, column {column}: {FirstSentence(ex.Message)}",
                ex.Message.Contains("Duplicate property", StringComparison.Ordinal)
                    ? "Each property may appear once per object: remove the repeated one."
                    : "Fix the JSON syntax at that position (a missing comma, quote or bracket is the usual cause)."));
        }

        // Shape problems are reported, and the offending values pruned, so that the rules below can still
        // report everything else in the same run.
        var shape = new List<SpecProblem>();
        var prunable = ShapeChecker.Check(root, shape);
        if (!prunable)
        {
            return Failed([.. shape]);
        }

        RolloutSpec? spec;
        try
        {
            spec = root.Deserialize(RolloutSpecJsonContext.Default.RolloutSpec);
        }
        catch (JsonException ex)
        {
            // A required value was pruned (already reported), or a gap in the shape check: still a user error.
            return shape.Count > 0
                ? Failed([.. shape])
                : Failed(new SpecProblem(ex.Path ?? "$", FirstSentence(ex.Message), "Check the value's type against the samples."));
        }

        if (spec is null)
        {
            return Failed(new SpecProblem("$", "The document is null.", "Write a JSON object describing the rollout."));
        }

        var rules = RolloutSpecValidator.Validate(spec)
            .Where(rule => !shape.Any(s => rule.Path == s.Path || rule.Path.StartsWith(s.Path + ".", StringComparison.Ordinal) || rule.Path.StartsWith(s.Path + "[", StringComparison.Ordinal)));
        var problems = shape.Concat(rules).ToArray();
        return problems.Length > 0 ? Failed(problems) : new SpecLoadResult { Spec = spec };
    }

    private static SpecLoadResult Failed(params SpecProblem[] problems) => new() { Problems = problems };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". ", StringComparison.Ordinal);
        return (cut > 0 ? message[..(cut + 1)] : message).Trim();
    }

    /// <summary>Walks a document against the contract that the source generator produced for <see cref="RolloutSpec"/>.</summary>
    private static class ShapeChecker
    {
        /// <summary>Checks the document and prunes what does not fit.</summary>
        /// <returns>False when a problem could not be pruned (the root or a list item is malformed).</returns>
        public static bool Check(JsonNode? root, List<SpecProblem> problems)
        {
            var fixable = true;
            var keep = Walk(root, RolloutSpecJsonContext.Default.RolloutSpec, "$", problems, ref fixable);
            return keep && fixable;
        }

        /// <returns>False when the node is wrong and must be pruned by its parent.</returns>
        private static bool Walk(JsonNode? node, JsonTypeInfo info, string path, List<SpecProblem> problems, ref bool fixable)
        {
            var type = info.Type;
            if (Nullable.GetUnderlyingType(type) is { } underlying)
            {
                return node is null || Walk(node, Info(underlying), path, problems, ref fixable);
            }

            if (type == typeof(FieldRuleSpec))
            {
                return CheckFieldRule(node, path, problems);
            }

            switch (info.Kind)
            {
                case JsonTypeInfoKind.Object:
                    return CheckObject(node, info, path, problems, ref fixable);
                case JsonTypeInfoKind.Enumerable:
                    if (!Expect(node, JsonValueKind.Array, "a list", path, problems))
                    {
                        return false;
                    }

                    var items = node!.AsArray();
                    for (var i = 0; i < items.Count; i++)
                    {
                        // A list item cannot be pruned without shifting the paths of the ones after it.
                        if (!Walk(items[i], Info(info.ElementType!), $"{path}[{i}]", problems, ref fixable))
                        {
                            fixable = false;
                        }
                    }

                    return true;
                case JsonTypeInfoKind.Dictionary:
                    if (!Expect(node, JsonValueKind.Object, "an object", path, problems))
                    {
                        return false;
                    }

                    var entries = node!.AsObject();
                    foreach (var name in entries.Select(e => e.Key).ToArray())
                    {
                        if (!Walk(entries[name], Info(info.ElementType!), ChildPath(path, name), problems, ref fixable))
                        {
                            entries.Remove(name);
                        }
                    }

                    return true;
                default:
                    return CheckValue(node, type, path, problems);
            }
        }

        private static bool CheckObject(JsonNode? node, JsonTypeInfo info, string path, List<SpecProblem> problems, ref bool fixable)
        {
            if (!Expect(node, JsonValueKind.Object, "an object", path, problems))
            {
                return false;
            }

            var obj = node!.AsObject();
            var known = info.Properties.ToDictionary(p => p.Name, StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var prune = new List<string>();
            foreach (var (name, value) in obj)
            {
                var childPath = ChildPath(path, name);
                seen.Add(name);
                if (!known.TryGetValue(name, out var propertyInfo))
                {
                    problems.Add(Unknown(childPath, name, known.Keys));
                    prune.Add(name);
                    continue;
                }

                if (value is null)
                {
                    if (!propertyInfo.IsSetNullable && Nullable.GetUnderlyingType(propertyInfo.PropertyType) is null)
                    {
                        problems.Add(new SpecProblem(childPath, $"'{name}' must not be null.", "Give it a value or leave it out to take the default."));
                        prune.Add(name);
                    }

                    continue;
                }

                if (!Walk(value, Info(propertyInfo.PropertyType), childPath, problems, ref fixable))
                {
                    prune.Add(name);
                }
            }

            foreach (var name in prune)
            {
                obj.Remove(name);
            }

            foreach (var required in info.Properties.Where(p => p.IsRequired && !seen.Contains(p.Name)))
            {
                problems.Add(new SpecProblem(
                    ChildPath(path, required.Name),
                    $"'{required.Name}' is required.",
                    $"Add \"{required.Name}\" to {(path == "$" ? "the top level" : path)}; see samples/ for an example."));
            }

            return true;
        }

        private static bool CheckFieldRule(JsonNode? node, string path, List<SpecProblem> problems)
        {
            var kind = Kind(node);
            if (kind == JsonValueKind.String)
            {
                return true;
            }

            if (kind != JsonValueKind.Object)
            {
                problems.Add(new SpecProblem(path, $"A mapping rule must be a column name or an object, not {Describe(kind)}.",
                    "Write \"ColumnName\" or { \"from\": \"ColumnName\", \"convert\": \"…\" }."));
                return false;
            }

            var ok = true;
            foreach (var (name, value) in node!.AsObject())
            {
                var childPath = ChildPath(path, name);
                switch (name)
                {
                    case FieldRuleProperties.From or FieldRuleProperties.Convert or FieldRuleProperties.Template:
                        ok &= Expect(value, JsonValueKind.String, "a string", childPath, problems);
                        break;
                    case FieldRuleProperties.Required:
                        if (Kind(value) is not (JsonValueKind.True or JsonValueKind.False))
                        {
                            problems.Add(new SpecProblem(childPath, "'required' must be true or false.", "Write \"required\": true."));
                            ok = false;
                        }

                        break;
                    case FieldRuleProperties.Const:
                        break;
                    default:
                        problems.Add(Unknown(childPath, name, FieldRuleProperties.All));
                        ok = false;
                        break;
                }
            }

            return ok;
        }

        private static bool CheckValue(JsonNode? node, Type type, string path, List<SpecProblem> problems)
        {
            var kind = Kind(node);
            if (type == typeof(string))
            {
                return Expect(node, JsonValueKind.String, "a string", path, problems);
            }

            if (type == typeof(bool))
            {
                if (kind is JsonValueKind.True or JsonValueKind.False)
                {
                    return true;
                }

                problems.Add(new SpecProblem(path, $"Expected true or false, found {Describe(kind)}.", "Write true or false without quotes."));
                return false;
            }

            if (type == typeof(int))
            {
                if (!Expect(node, JsonValueKind.Number, "a whole number", path, problems))
                {
                    return false;
                }

                if (node!.AsValue().GetValue<JsonElement>().TryGetInt32(out _))
                {
                    return true;
                }

                problems.Add(new SpecProblem(path, $"Expected a whole number, found {node.ToJsonString()}.", "Write an integer such as 500."));
                return false;
            }

            if (type == typeof(double) || type == typeof(decimal))
            {
                if (!Expect(node, JsonValueKind.Number, "a number", path, problems))
                {
                    return false;
                }

                if (type == typeof(double) || node!.AsValue().GetValue<JsonElement>().TryGetDecimal(out _))
                {
                    return true;
                }

                problems.Add(new SpecProblem(path, $"{node.ToJsonString()} is out of range.", "Write a number such as 5 or 0.5."));
                return false;
            }

            if (type.IsEnum)
            {
                var names = Enum.GetNames(type).Select(JsonNamingPolicy.CamelCase.ConvertName).ToArray();
                if (!Expect(node, JsonValueKind.String, "one of " + string.Join(", ", names), path, problems))
                {
                    return false;
                }

                var text = node!.GetValue<string>();
                if (names.Contains(text, StringComparer.Ordinal))
                {
                    return true;
                }

                problems.Add(new SpecProblem(path, $"'{text}' is not one of {string.Join(", ", names)}.",
                    $"Write one of: {string.Join(", ", names.Select(n => $"\"{n}\""))}."));
                return false;
            }

            return true;
        }

        private static bool Expect(JsonNode? node, JsonValueKind kind, string what, string path, List<SpecProblem> problems)
        {
            var actual = Kind(node);
            if (actual == kind)
            {
                return true;
            }

            problems.Add(new SpecProblem(path, $"Expected {what}, found {Describe(actual)}.", HintFor(kind)));
            return false;
        }

        private static JsonValueKind Kind(JsonNode? node) => node?.GetValueKind() ?? JsonValueKind.Null;

        private static string HintFor(JsonValueKind kind) => kind switch
        {
            JsonValueKind.String => "Put the value in double quotes.",
            JsonValueKind.Number => "Write a number without quotes.",
            JsonValueKind.Array => "Write a list in square brackets: [ … ].",
            _ => "Write an object in braces: { … }.",
        };

        private static SpecProblem Unknown(string path, string name, IEnumerable<string> known)
        {
            var candidates = known.ToArray();
            var suggestion = candidates
                .Select(k => (Name: k, Distance: Distance(name.ToUpperInvariant(), k.ToUpperInvariant())))
                .Where(c => c.Distance <= Math.Max(2, c.Name.Length / 3))
                .OrderBy(c => c.Distance)
                .Select(c => c.Name)
                .FirstOrDefault();
            var hint = suggestion is not null
                ? $"Did you mean '{suggestion}'?"
                : $"Known properties here: {string.Join(", ", candidates)}.";
            return new SpecProblem(path, $"Unknown property '{name}'.", hint);
        }

        private static int Distance(string a, string b)
        {
            var previous = new int[b.Length + 1];
            var current = new int[b.Length + 1];
            for (var j = 0; j <= b.Length; j++)
            {
                previous[j] = j;
            }

            for (var i = 1; i <= a.Length; i++)
            {
                current[0] = i;
                for (var j = 1; j <= b.Length; j++)
                {
                    var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                    current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
                }

                (previous, current) = (current, previous);
            }

            return previous[b.Length];
        }

        private static JsonTypeInfo Info(Type type) =>
            RolloutSpecJsonContext.Default.GetTypeInfo(type)
            ?? throw new InvalidOperationException($"No JSON contract for {type}.");
    }

    /// <summary>Appends a property to a JSON path, bracket-quoting names that are not simple.</summary>
    /// <param name="path">Parent path.</param>
    /// <param name="name">Property name.</param>
    internal static string ChildPath(string path, string name) =>
        Identifiers.IsFieldSegment(name) ? $"{path}.{name}" : $"{path}['{name.Replace("'", "\\'", StringComparison.Ordinal)}']";

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
