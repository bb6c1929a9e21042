using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rollout.Core.Spec;

/// <summary>
/// One rollout as written in a <c>*.rollout.json</c> file: which feature, where its data lives today and
/// tomorrow, how rows translate, and the phases, budgets and schedules that take it from 0% to 100%.
/// Obtain a validated instance through <see cref="RolloutSpecLoader"/>; the shape itself is not proof of validity.
/// </summary>
/// <remarks>
/// Optional properties with a default are <c>set</c>, not <c>init</c>: the source generator passes
/// <c>default</c> for an init-only property that the JSON leaves out, which would erase the default.
/// </remarks>
public sealed record RolloutSpec
{
    /// <summary>Feature key: lower-case letters, digits and dashes. The rollout's identity.</summary>
    public required string Feature { get; init; }

    /// <summary>Salt mixed into the exposure hash; change it to reshuffle which subjects are exposed.</summary>
    public string? Salt { get; init; }

    /// <summary>The legacy relational table (the source of truth).</summary>
    public required SourceSpec Source { get; init; }

    /// <summary>The new document container.</summary>
    public required TargetSpec Target { get; init; }

    /// <summary>Target field path (dots for nesting) to the rule that fills it.</summary>
    public required IReadOnlyDictionary<string, FieldRuleSpec> Mapping { get; init; }

    /// <summary>Ordered phases, exposure non-decreasing.</summary>
    public required IReadOnlyList<PhaseSpec> Phases { get; init; }

    /// <summary>Health budgets that a phase must stay within.</summary>
    public BudgetsSpec Budgets { get; set; } = new();

    /// <summary>How often the stores are compared and what happens to drift.</summary>
    public ReconciliationSpec Reconciliation { get; set; } = new();

    /// <summary>Behaviour of the application-facing gate.</summary>
    public GateSpec Gate { get; set; } = new();
}

/// <summary>The legacy SQL table.</summary>
public sealed record SourceSpec
{
    /// <summary>Table name, optionally schema-qualified (<c>dbo.Orders</c>). Plain identifiers only.</summary>
    public required string Table { get; init; }

    /// <summary>Primary key columns, in key order.</summary>
    public required IReadOnlyList<string> Key { get; init; }
}

/// <summary>The Cosmos DB container (or its embedded stand-in).</summary>
public sealed record TargetSpec
{
    /// <summary>Container name.</summary>
    public required string Container { get; init; }

    /// <summary>Partition key path such as <c>/customerId</c>; the mapping must produce it.</summary>
    public required string PartitionKey { get; init; }
}

/// <summary>
/// How one target field is filled. In JSON either a bare string (the source column to copy) or an object
/// with exactly one of <c>from</c>, <c>const</c> or <c>template</c>.
/// </summary>
[JsonConverter(typeof(FieldRuleSpecJsonConverter))]
public sealed record FieldRuleSpec
{
    /// <summary>Source column to read.</summary>
    public string? From { get; init; }

    /// <summary>Conversion applied to the column value (see <see cref="Translation.Conversions"/>).</summary>
    public string? Convert { get; init; }

    /// <summary>A constant JSON value written as is.</summary>
    public JsonElement? Const { get; init; }

    /// <summary>A computed string such as <c>"{CustomerId}-{OrderId}"</c>; placeholders name source columns.</summary>
    public string? Template { get; init; }

    /// <summary>A null value is an error rather than a JSON null. Always true for id and partition key.</summary>
    public bool Required { get; init; }
}

/// <summary>Where readers are served from during a phase.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<ReadMode>))]
public enum ReadMode
{
    /// <summary>Serve the legacy store only.</summary>
    Legacy,

    /// <summary>Read both, serve legacy, compare and record.</summary>
    Shadow,

    /// <summary>Serve the target for exposed subjects (falling back to the source when it lags).</summary>
    Live,
}

/// <summary>What an unanswered approval does when its timeout elapses.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<TimeoutAction>))]
public enum TimeoutAction
{
    /// <summary>Stop where we are, keep the exposure, wait for a person.</summary>
    Halt,

    /// <summary>Undo the rollout.</summary>
    Rollback,
}

/// <summary>Whether reconciliation repairs drift or only reports it.</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<RepairMode>))]
public enum RepairMode
{
    /// <summary>Record drift, change nothing.</summary>
    Report,

    /// <summary>Repair drift by the deterministic policy (the source wins).</summary>
    Auto,
}

/// <summary>One step of the rollout.</summary>
public sealed record PhaseSpec
{
    /// <summary>Unique phase name.</summary>
    public required string Name { get; init; }

    /// <summary>Percent of subjects on the new path, 0 to 100 with at most 3 decimals.</summary>
    public required decimal Exposure { get; init; }

    /// <summary>Read mode during the phase; defaults to shadow at 0% and live above.</summary>
    public ReadMode? Reads { get; init; }

    /// <summary>ISO-8601 duration to watch the phase before moving on.</summary>
    public required string Bake { get; init; }

    /// <summary>A person must approve before the next phase.</summary>
    public ApprovalSpec? Approval { get; init; }

    /// <summary>An operator may skip the rest of this phase's bake.</summary>
    public bool AllowSkipBake { get; init; }
}

/// <summary>A human approval gate at the end of a phase.</summary>
public sealed record ApprovalSpec
{
    /// <summary>ISO-8601 duration to wait for an answer.</summary>
    public required string Timeout { get; init; }

    /// <summary>What to do if nobody answers.</summary>
    public TimeoutAction OnTimeout { get; set; } = TimeoutAction.Halt;
}

/// <summary>Health budgets; a phase that breaks one rolls back.</summary>
public sealed record BudgetsSpec
{
    /// <summary>Allowed error-rate increase of the new path over the legacy path (0.005 = half a point).</summary>
    public double MaxErrorRateIncrease { get; set; } = 0.005;

    /// <summary>Allowed p95 latency of the new path, in milliseconds.</summary>
    public double MaxP95LatencyMs { get; set; } = 250;

    /// <summary>Allowed p95 latency increase of the new path over the legacy path, in milliseconds; null to not compare.</summary>
    public double? MaxP95LatencyIncreaseMs { get; init; }

    /// <summary>Allowed share of compared keys that drifted.</summary>
    public double MaxDriftRate { get; set; } = 0.0001;

    /// <summary>Samples the new path needs before any verdict other than insufficient data.</summary>
    public int MinSamples { get; set; } = 500;

    /// <summary>How long a bake is extended when it ends with insufficient data (ISO-8601).</summary>
    public string ExtendBakeBy { get; set; } = "PT5M";

    /// <summary>How many extensions before the rollout halts.</summary>
    public int MaxBakeExtensions { get; set; } = 3;

    /// <summary>How often health is evaluated during a bake (ISO-8601).</summary>
    public string EvaluateEvery { get; set; } = "PT1M";
}

/// <summary>Reconciliation schedule and policy.</summary>
public sealed record ReconciliationSpec
{
    /// <summary>ISO-8601 interval between runs.</summary>
    public string Every { get; set; } = "PT5M";

    /// <summary>Repair or only report.</summary>
    public RepairMode Repair { get; set; } = RepairMode.Auto;

    /// <summary>Rate limit so that a run at peak does not starve the application.</summary>
    public int MaxRowsPerSecond { get; set; } = 5000;
}

/// <summary>Gate behaviour.</summary>
public sealed record GateSpec
{
    /// <summary>ISO-8601 budget for the new path's transaction before it falls back to legacy.</summary>
    public string Timeout { get; set; } = "PT2S";

    /// <summary>Share of shadow reads that are compared (0..1).</summary>
    public double ShadowSampleRatio { get; set; } = 1.0;
}
