// Parses and analyzes KQL with Kusto.Language (Microsoft's KQL parser and binder, compiled to JavaScript:
// npm @kusto/language-service-next). Reads {"tables": {"Name": "(Column:type, ...)"}, "queries": [{"name", "text"}]}
// on stdin and prints every diagnostic of every query as a JSON array; the caller decides which fail.
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");

const { KustoCode, GlobalState, Symbols } = Kusto.Language;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", chunk => (input += chunk));
process.stdin.on("end", () => {
  const { tables, queries } = JSON.parse(input);
  const symbols = Object.entries(tables).map(([name, schema]) => new Symbols.TableSymbol.$ctor7(name, schema, null));
  const globals = GlobalState.Default.WithDatabase(new Symbols.DatabaseSymbol.ctor("workspace", symbols));
  const found = [];
  for (const { name, text } of queries) {
    const diagnostics = KustoCode.ParseAndAnalyze(text, globals).GetDiagnostics();
    for (let i = 0; i < diagnostics.Count; i++) {
      const d = diagnostics.getItem(i);
      found.push({ query: name, severity: d.Severity, code: d.Code, start: d.Start, length: d.Length, message: d.Message });
    }
  }
  process.stdout.write(JSON.stringify(found));
});
