using Microsoft.SqlServer.TransactSql.ScriptDom;
using Rollout.Core.DataPath;
using Rollout.Core.Exposure;
using Rollout.Core.Plan;
using Rollout.Core.Reconciliation;
using Rollout.Core.Spec;
using Rollout.Core.Translation;

namespace Rollout.Storage.SqlServer.Tests;

/// <summary>
/// Every statement the adapter generates parses as SQL Server 2022 T-SQL (Microsoft's own parser, ScriptDom), so a syntax
/// slip shows here and not first in CI against the real server.
/// </summary>
public sealed class TsqlParseTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 5, 0, 0, TimeSpan.Zero);

    public static TheoryData<string, string> Statements()
    {
        var table = SqlServerTableName.Parse("sales.Orders");
        var single = new SourceTableSql(table, [new KeyColumn("OrderId", KeyKind.Integer)], ["CustomerId", "TotalCents"]);
        var composite = new SourceTableSql(table, [new KeyColumn("TenantId", KeyKind.Text), new KeyColumn("OrderId", KeyKind.Integer)], ["Status"]);
        var key = SourceKey.From(["t1", 5L]);
        var letter = new DeadLetter(0, "orders-v2", key, 5, [], Now, 1, null);
        var run = new ReconcileRun(0, "orders-v2", ReconcileDepth.Deep, RepairMode.Auto, Now, null, null, null, null, ReconcileStatus.Running, new ReconcileCounts());
        var audited = new AuditedKey(key, DriftKind.Missing, RepairAction.Upsert, 5, null, null, null, Now, null);
        var data = new TheoryData<string, string>
        {
            { "current version", SourceTableSql.CurrentVersion },
            { "min valid version", SourceTableSql.MinValidVersion },
            { "table columns", SourceTableSql.TableColumns },
            { "changes", composite.Changes },
            { "count", composite.Count },
            { "snapshot", composite.SnapshotBatch(afterKey: false) },
            { "snapshot after key", composite.SnapshotBatch(afterKey: true) },
            { "versions after key", composite.Versions(afterKey: true) },
            { "get", composite.Get },
            { "quick digest", single.QuickDigestSegment(after: true, to: true) },
            { "quick digest open", single.QuickDigestSegment(after: false, to: false) },
            { "database set-up", SqlServerSchema.Database },
            { "table set-up", SqlServerSchema.SourceTable(table) },
            { "state tables", SqlServerSchema.StateTables },
            { "schema check", SqlServerSchemaCheck.Statement(table).Text },
            { "get checkpoint", StateSql.GetCheckpoint("feed").Text },
            { "save checkpoint", StateSql.SaveCheckpoint("feed", 1, Now).Text },
            { "get failures", StateSql.GetFailures("feed").Text },
            { "record failure", StateSql.RecordFailure("feed", 1, "boom", Now).Text },
            { "get backfill", StateSql.GetBackfill("feed").Text },
            { "save backfill", StateSql.SaveBackfill("feed", new BackfillProgress(1, key, 2, false)).Text },
            { "acquire lease", StateSql.AcquireLease("feed", "a", TimeSpan.FromSeconds(30)).Text },
            { "release lease", StateSql.ReleaseLease("feed", "a").Text },
            { "get applock", StateSql.GetAppLock("feed", TimeSpan.FromSeconds(1)).Text },
            { "release applock", StateSql.ReleaseAppLock("feed").Text },
            { "get state", RolloutSql.GetState("orders-v2").Text },
            { "set state", RolloutSql.SetState("orders-v2", "canary", new ExposureLevel(1000), ReadMode.Live, "r", Now).Text },
            { "state history", RolloutSql.StateHistory("orders-v2").Text },
            { "version before", RolloutSql.VersionBefore },
            { "record exposure", RolloutSql.RecordExposure("orders-v2", "s", "canary", new ExposureLevel(1), 5, Now).Text },
            { "resolve last write", RolloutSql.ResolveLastWrite(table, "orders-v2", "s").Text },
            { "count exposures", RolloutSql.CountExposures("orders-v2").Text },
            { "append journal", RolloutSql.AppendJournal(new RolloutJournalEntry("orders-v2", Now, "phase", "canary", 1m, "d", "i")).Text },
            { "read journal", RolloutSql.ReadJournal("orders-v2").Text },
            { "add dead letter", DeadLetterSql.Add(letter, "[]").Text },
            { "list dead letters", DeadLetterSql.List("orders-v2", false).Text },
            { "count open dead letters", DeadLetterSql.CountOpen("orders-v2").Text },
            { "resolve dead letter", DeadLetterSql.RecordRetry(1, true, 5, "[]", Now).Text },
            { "retry dead letter", DeadLetterSql.RecordRetry(1, false, 5, "[]", Now).Text },
            { "unfinished run", AuditSql.UnfinishedRun("orders-v2").Text },
            { "list runs", AuditSql.ListRuns("orders-v2", 5).Text },
            { "get run", AuditSql.GetRun("orders-v2", 5).Text },
            { "start run", AuditSql.StartRun(run).Text },
            { "record key", AuditSql.RecordKey(1, 0, audited).Text },
            { "previous run", AuditSql.PreviousRun(1).Text },
            { "complete segment", AuditSql.UpdateRun(1, "Running", "[5]", new ReconcileCounts(), null, true).Text },
            { "finish run", AuditSql.UpdateRun(1, "Completed", null, new ReconcileCounts(), Now, false).Text },
            { "list keys", AuditSql.ListKeys(1).Text },
            { "oldest unresolved", AuditSql.OldestUnresolvedSince(1).Text },
        };
        // The README's script, batch by batch (GO separates batches; it is not T-SQL).
        var batches = SqlServerSchema.Script(table).Split("\nGO\n");
        for (var i = 0; i < batches.Length; i++)
        {
            data.Add($"script batch {i}", batches[i]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Statements))]
    public void The_generated_statement_parses_as_sql_server_2022_tsql(string name, string sql)
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        using var reader = new StringReader(sql);

        parser.Parse(reader, out var errors);

        Assert.True(errors.Count == 0, $"{name}: {string.Join("; ", errors.Select(e => $"line {e.Line}, col {e.Column}: {e.Message}"))}\n{sql}");
    }

    [Fact]
    public void The_parser_rejects_broken_tsql()
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        using var reader = new StringReader("SELECT TOP (@n) WITH TIES FROM ORDER BY");

        parser.Parse(reader, out var errors);

        Assert.NotEmpty(errors);
    }
}
