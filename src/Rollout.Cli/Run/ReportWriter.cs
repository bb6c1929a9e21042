using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Rollout.Cli.Run;

/// <summary>
/// The report of a run: one self-contained HTML file (no network needed to open it). The run's record is
/// embedded as JSON; a small script draws the charts as SVG (exposure, error rate and p95 per path, feed lag,
/// drift) with the phase changes, approvals and rollback marked, and the tables are rendered here.
/// </summary>
internal static class ReportWriter
{
    public static string Html(RunRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var data = JsonSerializer.Serialize(record, RunRecord.Json);
        var html = new StringBuilder();
        html.Append(CultureInfo.InvariantCulture, $$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Rollout report: {{E(record.Feature)}} ({{E(record.Outcome)}})</title>
            <style>
            body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d232a; max-width: 1180px; }
            h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
            .outcome { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff; font-weight: 600; }
            .completed { background: #1f883d; } .rolledBack { background: #bf8700; } .halted, .failed { background: #cf222e; }
            table { border-collapse: collapse; width: 100%; font-size: 13px; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #d8dee4; vertical-align: top; }
            th { background: #f6f8fa; } .muted { color: #59636e; }
            .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; } .chart { border: 1px solid #d8dee4; border-radius: 6px; padding: 8px; }
            .chart h3 { font-size: 13px; margin: 0 0 4px; } svg { width: 100%; height: 200px; }
            .legacy { stroke: #0969da; } .new { stroke: #cf222e; } .single { stroke: #8250df; }
            polyline { fill: none; stroke-width: 1.6; } .marker { stroke: #59636e; stroke-dasharray: 3 3; } .marker.rollback { stroke: #cf222e; stroke-width: 2; }
            .axis { stroke: #afb8c1; } text { font-size: 10px; fill: #59636e; }
            .legend span { margin-right: 12px; } .sw { display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; }
            </style></head><body>
            <h1>Rollout of {{E(record.Feature)}} <span class="outcome {{E(record.Outcome)}}">{{E(record.Outcome)}}</span></h1>
            <div class="muted">{{E(record.StartedAt.ToString("u", CultureInfo.InvariantCulture))}} to {{E(record.EndedAt.ToString("u", CultureInfo.InvariantCulture))}}
            ({{(record.EndedAt - record.StartedAt).TotalSeconds:0}} s at speed x{{record.Speed:0.##}}); spec {{E(Path.GetFileName(record.SpecFile))}};
            {{record.RequestsPerSecond}} requests/s; health judged on at least {{record.EffectiveMinSamples}} samples per window{{(record.Injections.Count > 0 ? "; injected: " + E(string.Join(", ", record.Injections)) : string.Empty)}}</div>
            """);
        if (record.Reasons.Count > 0)
        {
            html.Append("<h2>Why</h2><ul>");
            foreach (var reason in record.Reasons)
            {
                html.Append(CultureInfo.InvariantCulture, $"<li>{E(reason)}</li>");
            }

            html.Append("</ul>");
        }

        html.Append("""
            <h2>Over time</h2>
            <div class="legend"><span><i class="sw" style="background:#0969da"></i>legacy path</span><span><i class="sw" style="background:#cf222e"></i>new path</span><span class="muted">dashed lines: phase changes and approvals; red: rollback</span></div>
            <div class="charts">
            <div class="chart"><h3>Exposure (%)</h3><svg id="chart-exposure" data-series="exposure"></svg></div>
            <div class="chart"><h3>Error rate by path (%)</h3><svg id="chart-errors" data-series="errors"></svg></div>
            <div class="chart"><h3>p95 latency by path (ms)</h3><svg id="chart-latency" data-series="latency"></svg></div>
            <div class="chart"><h3>Feed lag (changes not yet applied)</h3><svg id="chart-lag" data-series="lag"></svg></div>
            <div class="chart"><h3>Drift (%)</h3><svg id="chart-drift" data-series="drift"></svg></div>
            <div class="chart"><h3>Requests per second by path</h3><svg id="chart-rps" data-series="rps"></svg></div>
            </div>
            """);

        html.Append("<h2>Phases and verdicts</h2><table><tr><th>time</th><th>kind</th><th>phase</th><th>exposure</th><th>what</th></tr>");
        foreach (var entry in record.Journal.Where(j => j.Kind is "phase" or "verdict" or "extend" or "approval" or "refused" or "command" or "rollback" or "reconcile" or "finish"))
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(entry.At.ToString("HH:mm:ss.f", CultureInfo.InvariantCulture))}</td><td>{E(entry.Kind)}</td><td>{E(entry.Phase)}</td><td>{entry.ExposurePercent:0.###}%</td><td>{E(entry.Detail)}</td></tr>");
        }

        html.Append("</table>");
        var runs = record.Reconciliations;
        html.Append(CultureInfo.InvariantCulture, $"""
            <h2>Reconciliation</h2>
            <p>{runs.Count} runs; {runs.Sum(r => r.Drifted):N0} drifted keys found, {runs.Sum(r => r.Repaired):N0} repaired, {runs.Sum(r => r.Flagged):N0} flagged for a person.
            {E(record.StoresCheck)}: <strong>{(record.StoresAgree ? "the target equals the translated source" : "the stores differ")}</strong>.</p>
            <table><tr><th>run</th><th>started</th><th>depth</th><th>mode</th><th>compared</th><th>drifted</th><th>repaired</th><th>flagged</th><th>status</th></tr>
            """);
        foreach (var run in runs.Where(r => r.Drifted > 0 || r.Flagged > 0).Concat(runs.OrderByDescending(r => r.Id).Take(3)).DistinctBy(r => r.Id).OrderBy(r => r.Id))
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{run.Id}</td><td>{E(run.Started.ToString("HH:mm:ss.f", CultureInfo.InvariantCulture))}</td><td>{E(run.Depth)}</td><td>{E(run.Mode)}</td><td>{run.Compared:N0}</td><td>{run.Drifted:N0}</td><td>{run.Repaired:N0}</td><td>{run.Flagged:N0}</td><td>{E(run.Status)}</td></tr>");
        }

        html.Append(CultureInfo.InvariantCulture, $"""
            </table><p class="muted">(runs that found drift, and the latest three; every run and key is in 'rollout audit')</p>
            <h2>Workload</h2><p>{record.Reads:N0} reads and {record.Writes:N0} writes through the gate; {record.FellBack:N0} new-path writes fell back to the legacy path;
            {record.Tampered:N0} target documents changed behind the pipeline (injected drift); source rows at the end: {record.SourceRows:N0}.</p>
            <script type="application/json" id="run-data">{data}</script>
            <script>
            {Script}
            </script>
            </body></html>
            """);
        return html.ToString();
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private const string Script = """
        (function () {
          const run = JSON.parse(document.getElementById('run-data').textContent);
          const points = run.timeline;
          const ns = 'http://www.w3.org/2000/svg';
          const W = 540, H = 200, L = 44, R = 8, T = 8, B = 22;
          const t0 = Date.parse(run.startedAt), t1 = Math.max(Date.parse(run.endedAt), t0 + 1000);
          const series = {
            exposure: [{ cls: 'single', step: true, get: p => p.exposurePercent }],
            errors: [{ cls: 'legacy', get: p => 100 * p.legacyErrorRate }, { cls: 'new', get: p => 100 * p.newErrorRate }],
            latency: [{ cls: 'legacy', get: p => p.legacyP95Ms }, { cls: 'new', get: p => p.newP95Ms }],
            lag: [{ cls: 'single', get: p => p.feedLag }],
            drift: [{ cls: 'single', get: p => 100 * p.driftRate }],
            rps: [{ cls: 'legacy', get: p => p.legacyRps }, { cls: 'new', get: p => p.newRps }],
          };
          const marks = run.journal.filter(j => ['phase', 'approval', 'rollback', 'finish'].includes(j.kind));
          const x = t => L + (W - L - R) * (Date.parse(t) - t0) / (t1 - t0);
          function el(name, attrs, parent) { const e = document.createElementNS(ns, name); for (const k in attrs) e.setAttribute(k, attrs[k]); parent.appendChild(e); return e; }
          document.querySelectorAll('svg[data-series]').forEach(svg => {
            svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
            const defs = series[svg.dataset.series];
            const values = points.flatMap(p => defs.map(d => d.get(p))).filter(v => v !== null && isFinite(v));
            const top = Math.max(0, ...values);
            const max = (top > 0 ? top : 1) * 1.1;
            const y = v => T + (H - T - B) * (1 - v / max);
            el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }, svg);
            el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }, svg);
            el('text', { x: 2, y: T + 8 }, svg).textContent = (max / 1.1).toPrecision(3);
            el('text', { x: 2, y: H - B }, svg).textContent = '0';
            el('text', { x: L, y: H - 6 }, svg).textContent = '0 s';
            el('text', { x: W - R - 40, y: H - 6 }, svg).textContent = ((t1 - t0) / 1000).toFixed(0) + ' s';
            for (const m of marks) {
              const line = el('line', { x1: x(m.at), y1: T, x2: x(m.at), y2: H - B, class: 'marker ' + m.kind }, svg);
              el('title', {}, line).textContent = `${m.kind} ${m.phase}: ${m.detail}`;
            }
            for (const d of defs) {
              const values = points.map(p => [p.at, d.get(p)]).filter(([, v]) => v !== null && isFinite(v));
              // Exposure changes in steps: hold each value until the next sample.
              const shaped = d.step ? values.flatMap(([t, v], i) => i === 0 ? [[t, v]] : [[t, values[i - 1][1]], [t, v]]) : values;
              const pts = shaped.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
              if (pts.length > 0) el('polyline', { points: pts.join(' '), class: d.cls, 'data-points': values.length }, svg);
            }
          });
          document.body.setAttribute('data-charts-rendered', document.querySelectorAll('svg polyline').length);
        })();
        """;
}
