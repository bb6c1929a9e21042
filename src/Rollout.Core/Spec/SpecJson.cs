using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rollout.Core.Spec;

/// <summary>Enums are written and read in camelCase (<c>"shadow"</c>, <c>"rollback"</c>).</summary>
/// <typeparam name="TEnum">The enum.</typeparam>
public sealed class CamelCaseEnumConverter<TEnum> : JsonStringEnumConverter<TEnum>
    where TEnum : struct, Enum
{
    /// <summary>Creates the converter; integers are not accepted.</summary>
    public CamelCaseEnumConverter()
        : base(JsonNamingPolicy.CamelCase, allowIntegerValues: false)
    {
    }
}

/// <summary>Reads a mapping rule written either as a bare column name or as an object.</summary>
public sealed class FieldRuleSpecJsonConverter : JsonConverter<FieldRuleSpec>
{
    /// <inheritdoc />
    public override FieldRuleSpec Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new FieldRuleSpec { From = reader.GetString() };
        }

        using var element = JsonDocument.ParseValue(ref reader);
        var root = element.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("A mapping rule is a column name or an object.");
        }

        string? from = null, convert = null, template = null;
        JsonElement? constant = null;
        var required = false;
        foreach (var property in root.EnumerateObject())
        {
            switch (property.Name)
            {
                case FieldRuleProperties.From: from = property.Value.GetString(); break;
                case FieldRuleProperties.Convert: convert = property.Value.GetString(); break;
                case FieldRuleProperties.Template: template = property.Value.GetString(); break;
                case FieldRuleProperties.Const: constant = property.Value.Clone(); break;
                case FieldRuleProperties.Required: required = property.Value.GetBoolean(); break;
                default: throw new JsonException($"Unknown mapping property '{property.Name}'.");
            }
        }

        return new FieldRuleSpec { From = from, Convert = convert, Template = template, Const = constant, Required = required };
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, FieldRuleSpec value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        if (value is { From: not null, Convert: null, Template: null, Const: null, Required: false })
        {
            writer.WriteStringValue(value.From);
            return;
        }

        writer.WriteStartObject();
        if (value.From is not null) writer.WriteString(FieldRuleProperties.From, value.From);
        if (value.Convert is not null) writer.WriteString(FieldRuleProperties.Convert, value.Convert);
        if (value.Template is not null) writer.WriteString(FieldRuleProperties.Template, value.Template);
        if (value.Const is { } constant)
        {
            writer.WritePropertyName(FieldRuleProperties.Const);
            constant.WriteTo(writer);
        }

        if (value.Required) writer.WriteBoolean(FieldRuleProperties.Required, true);
        writer.WriteEndObject();
    }
}

/// <summary>Property names of a mapping rule object.</summary>
internal static class FieldRuleProperties
{
    public const string From = "from";
    public const string Convert = "convert";
    public const string Template = "template";
    public const string Const = "const";
    public const string Required = "required";

    public static readonly string[] All = [From, Convert, Template, Const, Required];
}

/// <summary>Source-generated JSON contract for specs.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(RolloutSpec))]
public sealed partial class RolloutSpecJsonContext : JsonSerializerContext;
