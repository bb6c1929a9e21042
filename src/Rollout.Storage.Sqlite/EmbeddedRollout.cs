using Rollout.Core;
using Rollout.Core.DataPath;
using Rollout.Core.Gate;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// Everything one feature needs on the embedded default, wired from a data folder: <c>source.db</c> (the
/// legacy table with change capture, and the rollout's state and exposure ledger), <c>target.db</c> (the
/// document store, checkpoints, leases, dead letters, backfill progress) and <c>telemetry.db</c>.
/// </summary>
public sealed class EmbeddedRollout : IAsyncDisposable
{
    private EmbeddedRollout(string folder, RolloutSpec spec, TimeProvider time, RolloutMetrics? metrics)
    {
        Folder = Path.GetFullPath(folder);
        Spec = spec;
        Time = time;
        Metrics = metrics;
        Translator = DocumentTranslator.Compile(spec);
        SourceDatabase = new SqliteDatabase(Path.Combine(Folder, "source.db"));
        TargetDatabase = new SqliteDatabase(Path.Combine(Folder, "target.db"));
        Source = SqliteSourceStore.For(SourceDatabase, spec, Translator);
        Target = new SqliteTargetStore(TargetDatabase, spec.Target.Container, time);
        Rollouts = new SqliteRolloutStore(SourceDatabase, time);
        Audit = new SqliteAuditStore(TargetDatabase);
        Telemetry = new SqliteTelemetryStore(new SqliteDatabase(Path.Combine(Folder, "telemetry.db"), durable: false));
    }

    /// <summary>The data folder.</summary>
    public string Folder { get; }

    /// <summary>The spec.</summary>
    public RolloutSpec Spec { get; }

    /// <summary>Clock.</summary>
    public TimeProvider Time { get; }

    /// <summary>Instruments, if any.</summary>
    public RolloutMetrics? Metrics { get; }

    /// <summary>Compiled mapping.</summary>
    public DocumentTranslator Translator { get; }

    /// <summary>source.db.</summary>
    public SqliteDatabase SourceDatabase { get; }

    /// <summary>target.db.</summary>
    public SqliteDatabase TargetDatabase { get; }

    /// <summary>Source table and change feed.</summary>
    public SqliteSourceStore Source { get; }

    /// <summary>Documents, checkpoints, leases, dead letters, backfill progress.</summary>
    public SqliteTargetStore Target { get; }

    /// <summary>Reconciliation audit trail.</summary>
    public SqliteAuditStore Audit { get; }

    /// <summary>Exposure state and ledger.</summary>
    public SqliteRolloutStore Rollouts { get; }

    /// <summary>Local telemetry.</summary>
    public SqliteTelemetryStore Telemetry { get; }

    /// <summary>Opens the stores of a spec in a folder (nothing is created in the source table).</summary>
    /// <param name="folder">Data folder.</param>
    /// <param name="spec">Validated spec.</param>
    /// <param name="time">Clock.</param>
    /// <param name="metrics">Instruments.</param>
    public static EmbeddedRollout Open(string folder, RolloutSpec spec, TimeProvider time, RolloutMetrics? metrics = null) =>
        new(folder, spec, time, metrics);

    /// <summary>Sets up change capture, the rollout tables and the target (idempotent): <c>rollout init</c>.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        await Rollouts.InitializeAsync(cancellationToken);
        await Source.InitializeAsync(cancellationToken);
        await Target.InitializeAsync(cancellationToken);
        await Audit.InitializeAsync(cancellationToken);
    }

    /// <summary>A dual-write processor for this feature.</summary>
    /// <param name="instanceId">This instance's lease owner id.</param>
    /// <param name="batchSize">Changes per batch.</param>
    /// <param name="maxAttempts">Failed attempts at one checkpoint before the batch's changes are applied one by one (see <see cref="DualWriteOptions.MaxAttempts"/>).</param>
    public DualWriteProcessor Processor(string instanceId, int batchSize = 5000, int maxAttempts = DualWriteOptions.DefaultMaxAttempts) =>
        new(Spec.Feature, Translator, Source, Target, Target, Target, Target,
            new DualWriteOptions { InstanceId = instanceId, BatchSize = batchSize, MaxAttempts = maxAttempts }, Time, metrics: Metrics);

    /// <summary>The backfill of this feature.</summary>
    public Backfill Backfill() => new(Spec.Feature, Translator, Source, Source, Target, Target, Target, Time);

    /// <summary>The reconciler of this feature.</summary>
    /// <param name="fault">Test hook.</param>
    public Reconciler Reconciler(Action<ReconcileFaultPoint>? fault = null) =>
        new(Spec.Feature, Translator, Source, Target, Target, Audit, Time, fault, Telemetry, Metrics);

    /// <summary>Reconciliation settings from the spec.</summary>
    /// <param name="depth">Quick or deep.</param>
    public ReconcileOptions ReconcileOptions(ReconcileDepth depth) => new()
    {
        Depth = depth,
        Mode = Spec.Reconciliation.Repair,
        MaxRowsPerSecond = Spec.Reconciliation.MaxRowsPerSecond,
    };

    /// <summary>
    /// The dual-write checkpoint of this feature, for <see cref="Core.Reconciliation.ReconcileOptions.PipelineCheckpoint"/>:
    /// changes beyond it are in flight.
    /// </summary>
    /// <param name="cancellationToken">Cancellation.</param>
    public Task<long?> PipelineCheckpointAsync(CancellationToken cancellationToken) =>
        Target.GetAsync(DualWriteProcessor.FeedNameFor(Spec.Feature), cancellationToken);

    /// <summary>The application-facing gate of this feature.</summary>
    /// <param name="options">Gate options; from the spec when null.</param>
    /// <param name="gateStore">The new path's unit of work; <see cref="Rollouts"/> when null (a decorator of it otherwise).</param>
    public RolloutGate Gate(GateOptions? options = null, IGateStore? gateStore = null) =>
        new(Spec, Translator, Rollouts, gateStore ?? Rollouts, Source, Target, Target, DualWriteProcessor.FeedNameFor(Spec.Feature), Telemetry, Time, options ?? GateOptions.From(Spec), Metrics);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Telemetry.DisposeAsync();
        SourceDatabase.CloseReaders();
        TargetDatabase.CloseReaders();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}
