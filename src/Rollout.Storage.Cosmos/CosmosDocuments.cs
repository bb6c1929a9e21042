using System.Buffers;
using System.IO.Hashing;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Rollout.Core.DataPath;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Cosmos;

/// <summary>
/// The shape of a target document in Cosmos DB: the translated document as it is, plus one system property
/// <c>_rollout</c> that the pipeline owns:
/// <code>
/// "_rollout": { "key": "[42]", "sort": "20800000000000002a", "version": 17, "hash": "…32 hex…", "pk": "c-7", "tombstone": false }
/// </code>
/// <c>sort</c> is the lower-case hex of the key's <see cref="SortKey"/> encoding: two hex digits per byte keep the byte
/// order, so ordering and range conditions on it give the same key order as the SQLite store's BLOB column.
/// A tombstone keeps only <c>id</c>, the partition key property and <c>_rollout</c>.
/// </summary>
internal static class CosmosDocuments
{
    public const string SystemProperty = "_rollout";

    /// <summary>Properties the service adds to every item; not part of the content.</summary>
    private static readonly HashSet<string> ServiceProperties = new(StringComparer.Ordinal) { "_rid", "_self", "_etag", "_ts", "_attachments", "_lsn", SystemProperty };

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static bool IsPartitionKeyPath(string? path)
    {
        if (path is null || !path.StartsWith('/'))
        {
            return false;
        }

        var segments = path[1..].Split('/');
        return segments.Length > 0 && segments.All(Identifiers.IsFieldSegment);
    }

    public static string[] PathSegments(string partitionKeyPath) => partitionKeyPath[1..].Split('/');

    public static string SortText(SourceKey key) => Convert.ToHexStringLower(key.Sort);

    /// <summary>A live document: the translated properties and <c>_rollout</c>, and the partition key read from the document itself (typed as the JSON holds it).</summary>
    public static (byte[] Body, PartitionKey PartitionKey) Live(TargetWrite write, string[] partitionPath)
    {
        var document = write.Document!;
        using var parsed = JsonDocument.Parse(document.Json);
        var root = parsed.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidOperationException($"The document of {write.Key} is not a JSON object.");
        }

        if (root.TryGetProperty(SystemProperty, out _))
        {
            throw new InvalidOperationException($"The document of {write.Key} has a '{SystemProperty}' property, which the Cosmos target reserves for itself; map the field to another name.");
        }

        var partitionKey = ToPartitionKey(Navigate(root, partitionPath))
            ?? throw new InvalidOperationException($"The document of {write.Key} has no value at the partition key path /{string.Join('/', partitionPath)}.");
        var buffer = new ArrayBufferWriter<byte>(document.Json.Length + 160);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            foreach (var property in root.EnumerateObject())
            {
                property.WriteTo(writer);
            }

            WriteSystem(writer, write.Key, write.SourceVersion, document.Hash, document.PartitionKey, tombstone: false);
            writer.WriteEndObject();
        }

        return (buffer.WrittenSpan.ToArray(), partitionKey);
    }

    /// <summary>A tombstone at a given place: its id and the partition key value (raw JSON) at the partition key path.</summary>
    public static byte[] Tombstone(TargetWrite write, string id, string partitionKeyJson, string[] partitionPath)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            if (!(partitionPath.Length == 1 && partitionPath[0] == "id"))
            {
                WriteNested(writer, partitionPath, 0, partitionKeyJson);
            }

            WriteSystem(writer, write.Key, write.SourceVersion, hash: null, partitionKeyText: null, tombstone: true);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Where the tombstone of a key that has no document goes: a fixed id derived from the key, and the same text as partition key.</summary>
    public static string TombstoneId(SourceKey key) => "rollout-tombstone-" + Convert.ToHexStringLower(XxHash128.Hash(key.Sort));

    private static void WriteNested(Utf8JsonWriter writer, string[] path, int index, string valueJson)
    {
        writer.WritePropertyName(path[index]);
        if (index == path.Length - 1)
        {
            writer.WriteRawValue(valueJson, skipInputValidation: false);
            return;
        }

        writer.WriteStartObject();
        WriteNested(writer, path, index + 1, valueJson);
        writer.WriteEndObject();
    }

    private static void WriteSystem(Utf8JsonWriter writer, SourceKey key, long version, ContentHash? hash, string? partitionKeyText, bool tombstone)
    {
        writer.WriteStartObject(SystemProperty);
        writer.WriteString("key", key.Text);
        writer.WriteString("sort", SortText(key));
        writer.WriteNumber("version", version);
        if (hash is { } h)
        {
            writer.WriteString("hash", h.ToString());
        }
        else
        {
            writer.WriteNull("hash");
        }

        if (partitionKeyText is null)
        {
            writer.WriteNull("pk");
        }
        else
        {
            writer.WriteString("pk", partitionKeyText);
        }

        writer.WriteBoolean("tombstone", tombstone);
        writer.WriteEndObject();
    }

    public static JsonElement? Navigate(JsonElement root, string[] path)
    {
        var current = root;
        foreach (var segment in path)
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(segment, out current))
            {
                return null;
            }
        }

        return current;
    }

    public static PartitionKey? ToPartitionKey(JsonElement? element) => element?.ValueKind switch
    {
        JsonValueKind.String => new PartitionKey(element.Value.GetString()),
        JsonValueKind.Number => new PartitionKey(element.Value.GetDouble()),
        JsonValueKind.True => new PartitionKey(true),
        JsonValueKind.False => new PartitionKey(false),
        JsonValueKind.Null => PartitionKey.Null,
        _ => null,
    };

    /// <summary>
    /// Reads an item as the store holds it. Content is the item without the service's and the pipeline's properties,
    /// written canonically; an item whose content no longer hashes to the hash the pipeline stored was changed outside
    /// the pipeline (the Cosmos counterpart of the SQLite store's moved write marker). Null for items without <c>_rollout</c>.
    /// </summary>
    public static StoredItem? Read(JsonElement item, string[] partitionPath)
    {
        if (!item.TryGetProperty(SystemProperty, out var system) || system.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var keyText = system.GetProperty("key").GetString()!;
        var sort = Convert.FromHexString(system.GetProperty("sort").GetString()!);
        var version = system.GetProperty("version").GetInt64();
        var tombstone = system.GetProperty("tombstone").GetBoolean();
        ContentHash? hash = system.TryGetProperty("hash", out var h) && h.ValueKind == JsonValueKind.String ? ContentHash.Parse(h.GetString()!) : null;
        string? pkText = system.TryGetProperty("pk", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        var partitionElement = Navigate(item, partitionPath);
        string? json = null;
        var tampered = false;
        if (!tombstone)
        {
            var buffer = new ArrayBufferWriter<byte>(1024);
            using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            {
                writer.WriteStartObject();
                foreach (var property in item.EnumerateObject().Where(p => !ServiceProperties.Contains(p.Name)).OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    CanonicalJson.Write(property.Value, writer);
                }

                writer.WriteEndObject();
            }

            json = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
            tampered = hash is not { } stored || stored.Value != XxHash128.HashToUInt128(buffer.WrittenSpan);
        }

        return new StoredItem(
            item.GetProperty("id").GetString()!,
            partitionElement is { } pe ? pe.GetRawText() : "null",
            ToPartitionKey(partitionElement) ?? PartitionKey.None,
            item.TryGetProperty("_etag", out var etag) ? etag.GetString() : null,
            SourceKey.FromStore(keyText, sort),
            version,
            hash,
            tombstone,
            pkText,
            json,
            tampered);
    }
}

/// <summary>An item of the container with the pipeline's fields read out.</summary>
internal sealed record StoredItem(string Id, string PartitionKeyJson, PartitionKey PartitionKey, string? ETag, SourceKey Key, long Version, ContentHash? Hash,
    bool IsTombstone, string? PartitionKeyText, string? Json, bool Tampered)
{
    public bool SamePlace(string id, PartitionKey partitionKey) => string.Equals(Id, id, StringComparison.Ordinal) && PartitionKey.Equals(partitionKey);

    public long Digest => RowDigest.Of(Version, Hash);

    public long Quick => !IsTombstone && Key.TryGetSingleInteger(out var integer) ? QuickDigest.Of(integer, Version) : 0L;

    public TargetDocument ToDocument() =>
        new(Key, IsTombstone ? null : Id, IsTombstone ? null : PartitionKeyText, Version, IsTombstone ? null : Hash, Json, IsTombstone);

    public TargetEntry ToEntry(bool withHash) => new(Key, Version, IsTombstone, withHash && !IsTombstone ? Hash : null, !IsTombstone && Tampered);
}
