using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Core.Tests.Translation;

public sealed class DocumentTranslatorTests
{
    private static readonly DocumentTranslator Orders = DocumentTranslator.Compile(
        RolloutSpecLoader.Load(File.ReadAllText(SpecFixtures.SamplePath("orders.rollout.json"))).Spec!);

    private static readonly DocumentTranslator Profiles = DocumentTranslator.Compile(
        RolloutSpecLoader.Load(File.ReadAllText(SpecFixtures.SamplePath("customer-profiles.rollout.json"))).Spec!);

    [Fact]
    public void Translates_an_order_to_canonical_json()
    {
        var result = Orders.Translate(OrderRow());

        Assert.True(result.IsSuccess, string.Join("; ", result.Errors));
        var doc = result.Document!;
        Assert.Equal("42", doc.Id);
        Assert.Equal("7", doc.PartitionKey);
        Assert.Equal(
            """{"currency":"EUR","customerId":"7","id":"42","placedAt":"2026-11-24T10:15:00Z","schemaVersion":2,"shipping":{"city":"Lyon","country":"FR"},"status":"shipped","total":19.9}""",
            doc.JsonText);
    }

    [Fact]
    public void Content_hash_is_pinned_and_independent_of_column_order()
    {
        var forward = Orders.Translate(OrderRow()).Document!;
        var reversed = Orders.Translate(SourceRow.From(OrderValues().Reverse().ToDictionary())).Document!;

        Assert.Equal(forward.Hash, reversed.Hash);
        Assert.Equal(forward.Hash, new ContentHash(System.IO.Hashing.XxHash128.HashToUInt128(forward.Json.Span)));
        Assert.Equal(forward.Hash, ContentHash.Parse(forward.Hash.ToString()));
        // Pinned: a change of canonical form or hash would report every row as drifted.
        Assert.Equal(PinnedOrderHash, forward.Hash.ToString());
    }

    [Fact]
    public void Non_ascii_text_is_stored_unescaped()
    {
        var values = OrderValues();
        values["ShipCity"] = "Besançon";

        Assert.Contains("\"city\":\"Besançon\"", Orders.Translate(SourceRow.From(values)).Document!.JsonText, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_value_change_changes_the_hash()
    {
        var baseline = Orders.Translate(OrderRow()).Document!.Hash;
        var values = OrderValues();
        values["TotalCents"] = 1991L;

        Assert.NotEqual(baseline, Orders.Translate(SourceRow.From(values)).Document!.Hash);
    }

    [Fact]
    public void Equal_decimals_written_differently_hash_the_same()
    {
        var a = OrderValues();
        var b = OrderValues();
        a["TotalCents"] = "1990";
        b["TotalCents"] = 1990m;

        Assert.Equal(Orders.Translate(SourceRow.From(a)).Document!.Hash, Orders.Translate(SourceRow.From(b)).Document!.Hash);
    }

    [Fact]
    public void Template_id_nested_partition_key_json_and_constants_translate()
    {
        var result = Profiles.Translate(ProfileRow());

        Assert.True(result.IsSuccess, string.Join("; ", result.Errors));
        var doc = result.Document!;
        // Template parts are the raw column values; the "guid" conversion applies to customerId only.
        Assert.Equal("t1:4F0C2A8E-1B7D-4C55-9E0A-2D5F3C1B6A77", doc.Id);
        Assert.Equal("4f0c2a8e-1b7d-4c55-9e0a-2d5f3c1b6a77", (string?)JsonNode.Parse(doc.JsonText)!["customerId"]);
        Assert.Equal("t1", doc.PartitionKey);
        var json = JsonNode.Parse(doc.JsonText)!;
        Assert.Equal("t1", (string?)json["tenant"]!["id"]);
        Assert.Equal("ada", (string?)json["name"]!["given"]);
        Assert.Equal("ada@example.com", (string?)json["email"]);
        Assert.True((bool?)json["marketingOptIn"]);
        Assert.Equal("dark", (string?)json["preferences"]!["theme"]);
        Assert.Equal("2023-11-14T22:13:20Z", (string?)json["createdAt"]);
        Assert.Equal("crm-sql", (string?)json["source"]);
        Assert.Equal("""{"a":1,"theme":"dark"}""", json["preferences"]!.ToJsonString());
    }

    [Fact]
    public void Missing_column_is_a_typed_error()
    {
        var values = OrderValues();
        values.Remove("Currency");

        var error = Assert.Single(Orders.Translate(SourceRow.From(values)).Errors);
        Assert.Equal(TranslationErrorKind.MissingColumn, error.Kind);
        Assert.Equal("currency", error.Field);
        Assert.Equal("Currency", error.Column);
    }

    [Fact]
    public void Null_in_id_partition_key_or_required_field_is_a_typed_error()
    {
        var order = OrderValues();
        order["OrderId"] = DBNull.Value;
        order["CustomerId"] = null;
        var profile = ProfileValues();
        profile["FamilyName"] = null;

        var orderErrors = Orders.Translate(SourceRow.From(order)).Errors;
        var profileError = Assert.Single(Profiles.Translate(SourceRow.From(profile)).Errors);

        Assert.Equal(["customerId", "id"], orderErrors.Select(e => e.Field).Order(StringComparer.Ordinal));
        Assert.All(orderErrors, e => Assert.Equal(TranslationErrorKind.NullInRequiredField, e.Kind));
        Assert.Equal(("name.family", TranslationErrorKind.NullInRequiredField), (profileError.Field, profileError.Kind));
    }

    [Fact]
    public void Null_in_an_optional_field_is_written_as_json_null()
    {
        var values = OrderValues();
        values["ShipCity"] = null;

        var json = JsonNode.Parse(Orders.Translate(SourceRow.From(values)).Document!.JsonText)!;

        Assert.True(json["shipping"]!.AsObject().ContainsKey("city"));
        Assert.Null(json["shipping"]!["city"]);
    }

    [Fact]
    public void Null_in_a_template_part_is_an_error()
    {
        var values = ProfileValues();
        values["TenantId"] = null;

        var errors = Profiles.Translate(SourceRow.From(values)).Errors;

        Assert.Contains(errors, e => e is { Field: "id", Kind: TranslationErrorKind.NullInRequiredField, Column: "TenantId" });
    }

    [Fact]
    public void Every_failing_field_is_reported_not_only_the_first()
    {
        var values = OrderValues();
        values["TotalCents"] = "nineteen";
        values["PlacedAt"] = "yesterday";
        values["Status"] = 3;

        var errors = Orders.Translate(SourceRow.From(values)).Errors;

        Assert.Equal(["placedAt", "status", "total"], errors.Select(e => e.Field).Order(StringComparer.Ordinal));
        Assert.All(errors, e => Assert.Equal(TranslationErrorKind.ConversionFailed, e.Kind));
        Assert.Contains("centsToDecimal", errors.Single(e => e.Field == "total").Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("a?b")]
    [InlineData("a#b")]
    [InlineData("")]
    public void Unusable_document_id_is_an_error(string id)
    {
        var values = OrderValues();
        values["OrderId"] = id;

        var error = Assert.Single(Orders.Translate(SourceRow.From(values)).Errors);
        Assert.Equal(("id", TranslationErrorKind.ConversionFailed), (error.Field, error.Kind));
    }

    [Fact]
    public void Source_columns_lists_every_column_the_mapping_reads_once()
    {
        Assert.Equal(["OrderId", "CustomerId", "Status", "TotalCents", "Currency", "PlacedAt", "ShipCity", "ShipCountry"], Orders.SourceColumns);
        Assert.Contains("TenantId", Profiles.SourceColumns);
        Assert.Equal(Profiles.SourceColumns.Count, Profiles.SourceColumns.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    [Fact]
    public void Compile_refuses_an_invalid_mapping()
    {
        var spec = SpecFixtures.Spec() with { Mapping = new Dictionary<string, FieldRuleSpec> { ["customerId"] = new() { From = "CustomerId" } } };

        Assert.Throws<ArgumentException>(() => DocumentTranslator.Compile(spec));
    }

    [Fact]
    public void Translator_is_safe_to_share_between_threads()
    {
        var expected = Orders.Translate(OrderRow()).Document!.Hash;

        var hashes = Enumerable.Range(0, 2000).AsParallel().Select(_ => Orders.Translate(OrderRow()).Document!.Hash).Distinct().ToArray();

        Assert.Equal([expected], hashes);
    }

    [Property(MaxTest = 1000)]
    public Property Hash_equals_the_translated_documents_hash_and_fails_on_the_same_fields(long orderId, long customerId, NonNegativeInt cents, bool badTotal, bool badDate, bool badId, string? city)
    {
        // Rows alternate on one thread between failing and translating: nothing of one row may leak into the next.
        var values = OrderValues();
        values["OrderId"] = badId ? "a/b" : orderId;
        values["CustomerId"] = customerId;
        values["TotalCents"] = badTotal ? "nineteen" : (long)cents.Get;
        values["PlacedAt"] = badDate ? "yesterday" : "2026-11-24 10:15:00";
        values["ShipCity"] = city;
        var row = SourceRow.From(values);

        var translated = Orders.Translate(row);
        var hash = Orders.Hash(row, out var errors);

        return (translated.IsSuccess
            ? hash == translated.Document!.Hash && errors is null
            : hash is null && errors!.Select(e => e.ToString()).SequenceEqual(translated.Errors.Select(e => e.ToString()))).ToProperty();
    }

    [Fact]
    public void Hash_after_a_failing_row_is_the_hash_of_the_row_alone()
    {
        var good = Orders.Translate(OrderRow()).Document!.Hash;
        var bad = OrderValues();
        bad["OrderId"] = null; // the id fails; the other fields' values stay in the thread's scratch

        Assert.Null(Orders.Hash(SourceRow.From(bad), out var errors));
        Assert.Contains(errors!, e => e.Field == "id");
        Assert.Equal(good, Orders.Hash(OrderRow(), out var none));
        Assert.Null(none);
        Assert.Null(Orders.Hash(SourceRow.From(bad), out _));
    }

    private const string PinnedOrderHash = "ac51aefc10666b84525d983e9d3c5bab";

    internal static Dictionary<string, object?> OrderValues() => new()
    {
        ["OrderId"] = 42L,
        ["CustomerId"] = 7L,
        ["Status"] = "SHIPPED",
        ["TotalCents"] = 1990L,
        ["Currency"] = "EUR",
        ["PlacedAt"] = "2026-11-24 10:15:00",
        ["ShipCity"] = "Lyon",
        ["ShipCountry"] = "fr",
    };

    private static SourceRow OrderRow() => SourceRow.From(OrderValues());

    private static Dictionary<string, object?> ProfileValues() => new()
    {
        ["TenantId"] = "t1",
        ["CustomerId"] = "4F0C2A8E-1B7D-4C55-9E0A-2D5F3C1B6A77",
        ["GivenName"] = "  ada ",
        ["FamilyName"] = "Lovelace",
        ["Email"] = "Ada@Example.com",
        ["MarketingOptIn"] = 1L,
        ["PreferencesJson"] = """{ "theme": "dark", "a": 1 }""",
        ["CreatedUnix"] = 1_700_000_000L,
    };

    private static SourceRow ProfileRow() => SourceRow.From(ProfileValues());
}
