using System.Globalization;

namespace Rollout.Core.Translation;

/// <summary>Why a field could not be translated.</summary>
public enum TranslationErrorKind
{
    /// <summary>The source row has no column of that name.</summary>
    MissingColumn,

    /// <summary>A required field (id, partition key, template part, or one marked required) is NULL.</summary>
    NullInRequiredField,

    /// <summary>The value could not be converted.</summary>
    ConversionFailed,

    /// <summary>
    /// Not a translation error: the row translated, but the target store kept refusing the write when it was applied
    /// alone (an id clash, an oversized document, a lost concurrency race every time…); the message is the store's.
    /// </summary>
    ApplyFailed,
}

/// <summary>One field that could not be translated; goes into a dead-letter record as is.</summary>
/// <param name="Field">Target field path.</param>
/// <param name="Column">Source column involved, when there is one.</param>
/// <param name="Kind">What went wrong.</param>
/// <param name="Message">Human-readable reason.</param>
public sealed record TranslationError(string Field, string? Column, TranslationErrorKind Kind, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{Field}: {Kind}: {Message}";
}

/// <summary>A 128-bit content hash of a document's canonical JSON.</summary>
/// <param name="Value">The hash.</param>
public readonly record struct ContentHash(UInt128 Value)
{
    /// <summary>32 lower-case hex digits.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, Value);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>Parses the 32-digit hex form.</summary>
    /// <param name="hex">Hex text.</param>
    public static ContentHash Parse(string hex) => new(UInt128.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
}

/// <summary>A translated target document.</summary>
/// <param name="Id">Document id.</param>
/// <param name="PartitionKey">Partition key value, as text.</param>
/// <param name="Json">Canonical UTF-8 JSON: properties sorted, no white space.</param>
/// <param name="Hash">Hash of <paramref name="Json"/>.</param>
public sealed record TranslatedDocument(string Id, string PartitionKey, ReadOnlyMemory<byte> Json, ContentHash Hash)
{
    /// <summary>The JSON as text.</summary>
    public string JsonText => System.Text.Encoding.UTF8.GetString(Json.Span);
}

/// <summary>Either a document or the list of fields that failed.</summary>
public readonly struct TranslationResult
{
    private TranslationResult(TranslatedDocument? document, IReadOnlyList<TranslationError> errors)
    {
        Document = document;
        Errors = errors;
    }

    /// <summary>The document, when translation succeeded.</summary>
    public TranslatedDocument? Document { get; }

    /// <summary>Every field that failed; empty on success.</summary>
    public IReadOnlyList<TranslationError> Errors { get; }

    /// <summary>True when there is a document.</summary>
    public bool IsSuccess => Document is not null;

    /// <summary>A success.</summary>
    /// <param name="document">The document.</param>
    public static TranslationResult Success(TranslatedDocument document) => new(document, []);

    /// <summary>A failure.</summary>
    /// <param name="errors">At least one error.</param>
    public static TranslationResult Failure(IReadOnlyList<TranslationError> errors) => new(null, errors);
}
