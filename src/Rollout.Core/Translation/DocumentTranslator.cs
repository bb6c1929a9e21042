using System.Buffers;
using System.IO.Hashing;
using System.Text.Json;
using System.Text.RegularExpressions;
using Rollout.Core.Spec;

namespace Rollout.Core.Translation;

/// <summary>
/// A spec's mapping compiled once into a translator from source rows to target documents. The output is
/// canonical JSON (properties sorted by ordinal name, no white space, decimals normalised), so that the same
/// row always gives the same bytes and the same <see cref="ContentHash"/> on every machine. Non-ASCII text is
/// kept as is (relaxed escaping: the documents are data, never embedded in HTML). Thread-safe.
/// </summary>
public sealed partial class DocumentTranslator
{
    /// <summary>The target field that holds the document id.</summary>
    public const string IdField = "id";

    private readonly Node _root;
    private readonly Leaf _id;
    private readonly Leaf _partitionKey;
    private readonly Leaf[] _leaves;

    private DocumentTranslator(Node root, Leaf id, Leaf partitionKey, Leaf[] leaves, IReadOnlyList<string> columns)
    {
        _root = root;
        _id = id;
        _partitionKey = partitionKey;
        _leaves = leaves;
        SourceColumns = columns;
    }

    /// <summary>Every source column the mapping reads, in first-use order (for SELECT lists).</summary>
    public IReadOnlyList<string> SourceColumns { get; }

    /// <summary>The target field path of the partition key (<c>/customer/id</c> becomes <c>customer.id</c>).</summary>
    public string PartitionKeyField => _partitionKey.Path;

    /// <summary>Compiles the mapping of a validated spec.</summary>
    /// <param name="spec">A spec that passed <see cref="RolloutSpecLoader"/>.</param>
    /// <exception cref="ArgumentException">The mapping is not valid (validate the spec first).</exception>
    public static DocumentTranslator Compile(RolloutSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var problems = RolloutSpecValidator.ValidateMapping(spec.Mapping, spec.Target.PartitionKey, "$.mapping");
        if (problems.Count > 0)
        {
            throw new ArgumentException("The mapping is not valid: " + string.Join("; ", problems), nameof(spec));
        }

        var partitionField = PartitionKeyPathToField(spec.Target.PartitionKey);
        var root = new Node(string.Empty);
        var leaves = new List<Leaf>();
        var columns = new List<string>();
        foreach (var (path, rule) in spec.Mapping)
        {
            var required = rule.Required || path == IdField || path == partitionField;
            var leaf = CompileLeaf(path, rule, required, leaves.Count);
            leaves.Add(leaf);
            foreach (var column in leaf.Columns)
            {
                if (!columns.Contains(column, StringComparer.OrdinalIgnoreCase))
                {
                    columns.Add(column);
                }
            }

            var node = root;
            var segments = path.Split('.');
            for (var i = 0; i < segments.Length - 1; i++)
            {
                node = node.Child(segments[i]);
            }

            node.Leaves.Add((segments[^1], leaf));
        }

        root.Seal();
        var all = leaves.ToArray();
        return new DocumentTranslator(
            root,
            all.Single(l => l.Path == IdField),
            all.Single(l => l.Path == partitionField),
            all,
            columns);
    }

    /// <summary>Converts a partition key path (<c>/a/b</c>) to a mapping field path (<c>a.b</c>).</summary>
    /// <param name="partitionKeyPath">The container's partition key path.</param>
    public static string PartitionKeyPathToField(string partitionKeyPath)
    {
        ArgumentNullException.ThrowIfNull(partitionKeyPath);
        return partitionKeyPath.TrimStart('/').Replace('/', '.');
    }

    /// <summary>Translates one row. Never throws for bad data: every failing field is reported.</summary>
    /// <param name="row">The source row.</param>
    public TranslationResult Translate(SourceRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var scratch = _threadScratch ??= new Scratch();
        if (Write(row, Bind(row.Schema), scratch, out var id) is { } errors)
        {
            return TranslationResult.Failure(errors);
        }

        var json = scratch.Buffer.WrittenSpan.ToArray();
        var partitionKey = scratch.Values[_partitionKey.Index]!.Value.AsText(scratch.Text.Written);
        return TranslationResult.Success(new TranslatedDocument(id!, partitionKey, json, new ContentHash(XxHash128.HashToUInt128(json))));
    }

    /// <summary>
    /// The content hash of the row's document, exactly as <see cref="Translate"/> computes it, without building the document
    /// (deep reconciliation re-translates every source row and needs only the hash of each).
    /// </summary>
    /// <param name="row">The source row.</param>
    /// <param name="errors">Every failing field, when the row cannot be translated.</param>
    /// <returns>The hash, or null when the row cannot be translated.</returns>
    public ContentHash? Hash(SourceRow row, out IReadOnlyList<TranslationError>? errors)
    {
        ArgumentNullException.ThrowIfNull(row);
        return Hash(row, row.Schema, out errors);
    }

    /// <summary>
    /// The content hash of the document of the row a reader is on, exactly as <see cref="Hash(SourceRow, out IReadOnlyList{TranslationError}?)"/>
    /// computes it for the same values as a <see cref="SourceRow"/>: integers and UTF-8 text are converted where they lie
    /// (no value is boxed, no text decoded, for the common conversions); any other value is read as an object.
    /// </summary>
    /// <param name="record">The row, valid for the duration of the call.</param>
    /// <param name="schema">The reader's column names (the translator resolves the mapping's columns once per schema).</param>
    /// <param name="errors">Every failing field, when the row cannot be translated.</param>
    /// <returns>The hash, or null when the row cannot be translated.</returns>
    public ContentHash? Hash(ISourceRecord record, SourceSchema schema, out IReadOnlyList<TranslationError>? errors)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(schema);
        var scratch = _threadScratch ??= new Scratch();
        errors = Write(record, Bind(schema), scratch, out _);
        return errors is null ? new ContentHash(XxHash128.HashToUInt128(scratch.Buffer.WrittenSpan)) : null;
    }

    /// <summary>The ordinals of every leaf's columns in a schema (-1 for a column it lacks), resolved once per schema.</summary>
    private int[][] Bind(SourceSchema schema)
    {
        // Readers share one schema for all their rows: the last binding almost always serves.
        if (_binding is { } last && ReferenceEquals(last.Schema, schema))
        {
            return last.Ordinals;
        }

        var ordinals = _leaves.Select(l => l.Columns.Select(schema.IndexOf).ToArray()).ToArray();
        _binding = new Binding(schema, ordinals);
        return ordinals;
    }

    private sealed record Binding(SourceSchema Schema, int[][] Ordinals);

    private volatile Binding? _binding;

    /// <summary>Evaluates every field and writes the canonical JSON into the thread's buffer; the errors, or null on success.</summary>
    private List<TranslationError>? Write(ISourceRecord record, int[][] ordinals, Scratch scratch, out string? id)
    {
        // One value array, buffer and writer per thread, reused row after row: translation runs for every change of the
        // feed and every row of a deep reconciliation. Every value of this row is assigned before it is read.
        if (scratch.Values.Length < _leaves.Length)
        {
            scratch.Values = new JsonScalar?[_leaves.Length];
        }

        scratch.Text.Clear();
        var values = scratch.Values;
        List<TranslationError>? errors = null;
        for (var i = 0; i < _leaves.Length; i++)
        {
            if (_leaves[i].Evaluate(record, ordinals[i], scratch.Text, out var value, out var error))
            {
                values[i] = value;
            }
            else
            {
                values[i] = null; // not left over from the previous row
                (errors ??= []).Add(error!);
            }
        }

        id = null;
        if (values[_id.Index] is { } idValue)
        {
            id = idValue.AsText(scratch.Text.Written);
            if (id.Length == 0 || id.Length > 1023 || id.AsSpan().IndexOfAny(ForbiddenIdCharacters) >= 0)
            {
                (errors ??= []).Add(new TranslationError(IdField, _id.Columns.FirstOrDefault(), TranslationErrorKind.ConversionFailed,
                    $"'{id}' is not a usable document id (1 to 1023 characters, none of / \\ ? #)"));
            }
        }

        if (errors is not null)
        {
            return errors;
        }

        scratch.Buffer.ResetWrittenCount();
        scratch.Writer.Reset(scratch.Buffer);
        WriteNode(_root, values, scratch.Text.Written, scratch.Writer);
        scratch.Writer.Flush();
        return null;
    }

    [ThreadStatic]
    private static Scratch? _threadScratch;

    /// <summary>The documents' escaping (property names are escaped with it once, when the mapping is compiled).</summary>
    private static readonly System.Text.Encodings.Web.JavaScriptEncoder Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    private sealed class Scratch
    {
        public JsonScalar?[] Values { get; set; } = [];

        public ArrayBufferWriter<byte> Buffer { get; } = new(1024);

        /// <summary>The UTF-8 text of the row's values read in place (<see cref="JsonScalar.Utf8"/> points into it).</summary>
        public Utf8Text Text { get; } = new();

        public Utf8JsonWriter Writer { get; } = new(new ArrayBufferWriter<byte>(1), new JsonWriterOptions
        {
            SkipValidation = true,
            Encoder = Encoder,
        });
    }

    private static void WriteNode(Node node, JsonScalar?[] values, ReadOnlySpan<byte> text, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        foreach (var (_, name, child, leaf) in node.Ordered)
        {
            writer.WritePropertyName(name);
            if (child is not null)
            {
                WriteNode(child, values, text, writer);
            }
            else if (values[leaf!.Index] is { } value)
            {
                value.WriteTo(writer, text);
            }
            else
            {
                writer.WriteNullValue();
            }
        }

        writer.WriteEndObject();
    }

    private static Leaf CompileLeaf(string path, FieldRuleSpec rule, bool required, int index)
    {
        if (rule.Const is { } constant)
        {
            var copy = constant.Clone();
            return new Leaf(path, [], required, index, (ISourceRecord _, int[] _, Utf8Text _, out JsonScalar? value, out TranslationError? error) =>
            {
                error = null;
                value = copy.ValueKind == JsonValueKind.Null ? null : JsonScalar.Raw(copy);
                return true;
            });
        }

        if (rule.Template is { } template)
        {
            var parts = TemplateParts(template);
            var columns = parts.Where(p => p.IsColumn).Select(p => p.Text).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
            // Each column part's position in the leaf's columns (and so in its ordinals).
            var slots = parts.Select(p => p.IsColumn ? Array.FindIndex(columns, c => string.Equals(c, p.Text, StringComparison.OrdinalIgnoreCase)) : -1).ToArray();
            return new Leaf(path, columns, required, index, (ISourceRecord row, int[] ordinals, Utf8Text _, out JsonScalar? value, out TranslationError? error) =>
            {
                var text = new System.Text.StringBuilder();
                for (var p = 0; p < parts.Count; p++)
                {
                    var part = parts[p];
                    if (!part.IsColumn)
                    {
                        text.Append(part.Text);
                        continue;
                    }

                    if (!Read(row, ordinals[slots[p]], path, part.Text, required: true, out var raw, out error))
                    {
                        value = null;
                        return false;
                    }

                    text.Append(Conversions.Natural(raw!, out var scalar, out string? _)
                        ? scalar.AsText([])
                        : System.Convert.ToString(raw, System.Globalization.CultureInfo.InvariantCulture));
                }

                value = JsonScalar.Text(text.ToString());
                error = null;
                return true;
            });
        }

        var column = rule.From!;
        Converter converter = Conversions.Natural;
        if (rule.Convert is { } name && !Conversions.TryGet(name, out converter))
        {
            throw new ArgumentException($"Unknown conversion '{name}'.", nameof(rule));
        }

        var inPlace = RecordConversions.For(rule.Convert);
        return new Leaf(path, [column], required, index, (ISourceRecord row, int[] ordinals, Utf8Text text, out JsonScalar? value, out TranslationError? error) =>
        {
            value = null;
            var ordinal = ordinals[0];
            if (inPlace is not null && ordinal >= 0 && row.KindOf(ordinal) is var kind and (SourceValueKind.WholeNumber or SourceValueKind.Text)
                && inPlace(row, ordinal, kind, text, out var converted))
            {
                // Read where it lies; anything the in-place conversion does not take is read as an object below.
                value = converted;
                error = null;
                return true;
            }

            if (!Read(row, ordinal, path, column, required, out var raw, out error))
            {
                return false;
            }

            if (raw is null)
            {
                return true;
            }

            if (converter(raw, out var scalar, out var reason))
            {
                value = scalar;
                return true;
            }

            error = new TranslationError(path, column, TranslationErrorKind.ConversionFailed,
                rule.Convert is null ? reason! : $"{rule.Convert}: {reason}");
            return false;
        });
    }

    private static bool Read(ISourceRecord row, int ordinal, string path, string column, bool required, out object? value, out TranslationError? error)
    {
        error = null;
        value = null;
        if (ordinal < 0)
        {
            error = new TranslationError(path, column, TranslationErrorKind.MissingColumn, $"the source row has no column '{column}'");
            return false;
        }

        value = row.GetValue(ordinal);

        if (value is null && required)
        {
            error = new TranslationError(path, column, TranslationErrorKind.NullInRequiredField, $"'{column}' is NULL but '{path}' is required");
            return false;
        }

        return true;
    }

    internal static IReadOnlyList<(bool IsColumn, string Text)> TemplateParts(string template)
    {
        var parts = new List<(bool, string)>();
        var last = 0;
        foreach (Match match in PlaceholderRegex().Matches(template))
        {
            if (match.Index > last)
            {
                parts.Add((false, template[last..match.Index]));
            }

            parts.Add((true, match.Groups[1].Value));
            last = match.Index + match.Length;
        }

        if (last < template.Length)
        {
            parts.Add((false, template[last..]));
        }

        return parts;
    }

    [GeneratedRegex(@"\{([^{}]*)\}", RegexOptions.CultureInvariant)]
    private static partial Regex PlaceholderRegex();

    private static readonly System.Buffers.SearchValues<char> ForbiddenIdCharacters = System.Buffers.SearchValues.Create("/\\?#");

    private delegate bool LeafEvaluator(ISourceRecord row, int[] ordinals, Utf8Text text, out JsonScalar? value, out TranslationError? error);

    private sealed class Leaf(string path, string[] columns, bool required, int index, LeafEvaluator evaluate)
    {
        public string Path { get; } = path;

        public string[] Columns { get; } = columns;

        public int Index { get; } = index;

        public bool Evaluate(ISourceRecord row, int[] ordinals, Utf8Text text, out JsonScalar? value, out TranslationError? error)
        {
            if (!evaluate(row, ordinals, text, out value, out error))
            {
                return false;
            }

            if (value is null && required)
            {
                error = new TranslationError(Path, Columns.FirstOrDefault(), TranslationErrorKind.NullInRequiredField, $"'{Path}' is required but has no value");
                return false;
            }

            return true;
        }
    }

    private sealed class Node(string name)
    {
        private readonly Dictionary<string, Node> _children = new(StringComparer.Ordinal);

        public string Name { get; } = name;

        public List<(string Name, Leaf Leaf)> Leaves { get; } = [];

        /// <summary>Properties in canonical order, each name escaped once (as the writer would escape it on every row).</summary>
        public (string Name, JsonEncodedText Encoded, Node? Child, Leaf? Leaf)[] Ordered { get; private set; } = [];

        public Node Child(string segment)
        {
            if (!_children.TryGetValue(segment, out var child))
            {
                child = new Node(segment);
                _children.Add(segment, child);
            }

            return child;
        }

        public void Seal()
        {
            foreach (var child in _children.Values)
            {
                child.Seal();
            }

            Ordered = _children.Values.Select(c => (c.Name, (Node?)c, (Leaf?)null))
                .Concat(Leaves.Select(l => (l.Name, (Node?)null, (Leaf?)l.Leaf)))
                .OrderBy(e => e.Item1, StringComparer.Ordinal)
                .Select(e => (e.Item1, JsonEncodedText.Encode(e.Item1, Encoder), e.Item2, e.Item3))
                .ToArray();
        }
    }
}

/// <summary>Writes any JSON value canonically: object properties sorted by ordinal name, no white space.</summary>
public static class CanonicalJson
{
    /// <summary>Writes <paramref name="element"/> canonically.</summary>
    /// <param name="element">Any JSON value.</param>
    /// <param name="writer">Destination.</param>
    public static void Write(JsonElement element, Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    Write(property.Value, writer);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    Write(item, writer);
                }

                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }
}
