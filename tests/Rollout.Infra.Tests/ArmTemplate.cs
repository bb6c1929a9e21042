using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rollout.Infra.Tests;

/// <summary>A compiled ARM template, with the resources of its modules (nested deployments) flattened.</summary>
public sealed partial class ArmTemplate(JsonObject root)
{
    public JsonObject Root { get; } = root;

    /// <summary>Every resource, with the module (nested deployment name) and the template that declares it.</summary>
    public IEnumerable<ArmResource> Resources => Walk(Root, "main");

    public IEnumerable<ArmResource> OfType(string type) =>
        Resources.Where(r => string.Equals(r.Type, type, StringComparison.OrdinalIgnoreCase));

    public ArmResource Single(string type) => OfType(type).ShouldHaveSingleItem($"exactly one {type}");

    /// <summary>The template of a module (the nested deployment of that name).</summary>
    public JsonObject Module(string name) =>
        (JsonObject)OfType("Microsoft.Resources/deployments").Single(r => r.Node["name"]!.GetValue<string>() == name).Node["properties"]!["template"]!;

    private static IEnumerable<ArmResource> Walk(JsonObject template, string module)
    {
        foreach (var node in template["resources"]!.AsArray())
        {
            var resource = (JsonObject)node!;
            var type = resource["type"]!.GetValue<string>();
            yield return new ArmResource(type, resource, template, module);
            if (type == "Microsoft.Resources/deployments")
            {
                foreach (var nested in Walk((JsonObject)resource["properties"]!["template"]!, resource["name"]!.GetValue<string>()))
                {
                    yield return nested;
                }
            }
        }
    }

    [GeneratedRegex(@"variables\('(?<name>\w+)'\)")]
    internal static partial Regex VariableReference();

    [GeneratedRegex(@"^\[variables\('(?<name>[^']+)'\)\]$")]
    internal static partial Regex WholeVariable();

    [GeneratedRegex(@"^\[format\('(?<format>(?:[^']|'')*)'(?<arguments>(?:, variables\('[^']+'\))*)\)\]$")]
    internal static partial Regex FormatOfVariables();

    [GeneratedRegex(@"variables\('(?<name>[^']+)'\)")]
    internal static partial Regex AnyVariable();
}

public sealed record ArmResource(string Type, JsonObject Node, JsonObject Template, string Module)
{
    public JsonNode? Properties => Node["properties"];

    /// <summary>
    /// The text a string property holds once deployed, when it is built from literals and <c>loadTextContent</c> at
    /// compile time: <c>[variables('x')]</c> and <c>[format('…{0}…', variables('x'), …)]</c> are expanded.
    /// </summary>
    public string Text(JsonNode? value) => Expand(value!.GetValue<string>());

    private string Expand(string value)
    {
        if (ArmTemplate.WholeVariable().Match(value) is { Success: true } variable)
        {
            return Expand(Template["variables"]![variable.Groups["name"].Value]!.GetValue<string>());
        }

        if (ArmTemplate.FormatOfVariables().Match(value) is { Success: true } format)
        {
            var arguments = ArmTemplate.AnyVariable().Matches(format.Groups["arguments"].Value)
                .Select(m => (object)Expand($"[variables('{m.Groups["name"].Value}')]"))
                .ToArray();
            return string.Format(System.Globalization.CultureInfo.InvariantCulture, format.Groups["format"].Value.Replace("''", "'", StringComparison.Ordinal), arguments);
        }

        value.ShouldNotStartWith("[", customMessage: $"an ARM expression the tests do not expand: {value}");
        return value;
    }

    /// <summary>A string property with each <c>variables('x')</c> whose value is a string replaced by that value in quotes.</summary>
    public string Resolved(JsonNode? value)
    {
        var text = value?.ToJsonString() ?? "";
        if (value is JsonValue v && v.TryGetValue<string>(out var s))
        {
            text = s;
        }

        return ArmTemplate.VariableReference().Replace(text, m =>
            Template["variables"]?[m.Groups["name"].Value] is JsonValue variable && variable.TryGetValue<string>(out var literal) ? $"'{literal}'" : m.Value);
    }
}
