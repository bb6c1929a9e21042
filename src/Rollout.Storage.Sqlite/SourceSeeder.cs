using System.Globalization;
using Microsoft.Data.Sqlite;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// Creates and fills a realistic source table for a spec on the embedded default (demos, rehearsals,
/// benchmarks): one column per key and mapped column, with values shaped by the conversion the mapping
/// applies (cents as integers, dates as text, JSON, GUIDs, mixed-case text for <c>lower</c>…). Deterministic
/// for a given seed.
/// </summary>
public static class SourceSeeder
{
    private static readonly string[] Statuses = ["NEW", "PAID", "SHIPPED", "Delivered", "cancelled"];
    private static readonly string[] Cities = ["Lyon", "Berlin", "Osaka", "Austin", "Besançon", "São Paulo", "Nairobi", "Oslo"];
    private static readonly string[] Countries = ["fr", "de", "jp", "us", "br", "ke", "no"];
    private static readonly string[] Currencies = ["EUR", "USD", "JPY", "BRL"];
    private static readonly string[] Names = ["ada", "grace", "alan", "barbara", "edsger", "katherine", "linus", "margaret"];

    /// <summary>Kinds of column the seeder creates.</summary>
    internal enum ColumnKind
    {
        Integer,
        Real,
        Text,
    }

    /// <summary>Creates the source table if it does not exist (keys first, then mapped columns).</summary>
    /// <param name="rollout">The embedded rollout.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>True when the table was created.</returns>
    public static async Task<bool> CreateTableAsync(EmbeddedRollout rollout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        await using var connection = await rollout.SourceDatabase.OpenAsync(cancellationToken);
        if ((await SqliteSourceStore.ColumnsAsync(connection, rollout.Source.TableName, cancellationToken)).Count > 0)
        {
            return false;
        }

        var plan = Plan(rollout.Spec, rollout.Translator.SourceColumns);
        var columns = string.Join(", ", plan.Select(c => $"{Identifiers.QuoteSqlite(c.Name)} {c.Kind.ToString().ToUpperInvariant()}"));
        var key = string.Join(", ", rollout.Spec.Source.Key.Select(Identifiers.QuoteSqlite));
        SqliteDatabase.Execute(connection, $"CREATE TABLE {Identifiers.QuoteSqlite(rollout.Source.TableName)} ({columns}, PRIMARY KEY ({key}))");
        return true;
    }

    /// <summary>Appends <paramref name="rows"/> generated rows after the highest existing key, in batches of one transaction each.</summary>
    /// <param name="rollout">The embedded rollout (its table must exist).</param>
    /// <param name="rows">Rows to add.</param>
    /// <param name="seed">Random seed.</param>
    /// <param name="progress">Called with the rows added so far after each batch.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task SeedAsync(EmbeddedRollout rollout, int rows, int seed, Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        var plan = Plan(rollout.Spec, rollout.Translator.SourceColumns);
        var random = new Random(seed);
        await using var connection = await rollout.SourceDatabase.OpenAsync(cancellationToken);
        var start = await CountAsync(connection, rollout.Source.TableName, cancellationToken);
        var table = Identifiers.QuoteSqlite(rollout.Source.TableName);
        var names = string.Join(", ", plan.Select(c => Identifiers.QuoteSqlite(c.Name)));
        var values = string.Join(", ", plan.Select((_, i) => $"@p{i}"));
        const int batch = 10_000;
        for (var done = 0; done < rows;)
        {
            await using var transaction = connection.BeginTransaction(deferred: false);
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"INSERT INTO {table} ({names}) VALUES ({values})";
            var parameters = plan.Select((_, i) => SqliteDatabase.Parameter(command, $"@p{i}", null)).ToArray();
            command.Prepare();
            var end = Math.Min(rows, done + batch);
            for (; done < end; done++)
            {
                var n = start + done + 1;
                for (var i = 0; i < plan.Count; i++)
                {
                    parameters[i].Value = Value(plan[i], n, random) ?? DBNull.Value;
                }

                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
            progress?.Invoke(done);
        }
    }

    internal sealed record PlannedColumn(string Name, ColumnKind Kind, string? Conversion, bool IsKey, int KeyIndex);

    internal static IReadOnlyList<PlannedColumn> Plan(RolloutSpec spec, IReadOnlyList<string> sourceColumns)
    {
        var conversions = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var rule in spec.Mapping.Values.Where(r => r.From is not null))
        {
            conversions.TryAdd(rule.From!, rule.Convert);
        }

        var keys = spec.Source.Key;
        return keys.Concat(sourceColumns.Where(c => !keys.Contains(c, StringComparer.OrdinalIgnoreCase)))
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Select(name =>
            {
                conversions.TryGetValue(name, out var conversion);
                var keyIndex = keys.ToList().FindIndex(k => k.Equals(name, StringComparison.OrdinalIgnoreCase));
                var kind = conversion switch
                {
                    "int64" or "centsToDecimal" or "unixSecondsToIso" or "unixMillisToIso" or "boolean" => ColumnKind.Integer,
                    "double" or "decimal" => ColumnKind.Real,
                    null when keyIndex >= 0 && keys.Count == 1 => ColumnKind.Integer,
                    null when name.EndsWith("Id", StringComparison.Ordinal) && keyIndex < 0 => ColumnKind.Integer,
                    _ => ColumnKind.Text,
                };
                if (keyIndex >= 0 && keys.Count == 1 && conversion is "string")
                {
                    kind = ColumnKind.Integer;
                }

                return new PlannedColumn(name, kind, conversion, keyIndex >= 0, keyIndex);
            })
            .ToArray();
    }

    internal static object? Value(PlannedColumn column, long n, Random random)
    {
        if (column.IsKey)
        {
            return column.Kind == ColumnKind.Integer
                ? n
                : column.KeyIndex == 0
                    ? $"t{n % 16}"
                    : column.Conversion == "guid" ? SeededGuid(n) : n.ToString(CultureInfo.InvariantCulture);
        }

        var name = column.Name;
        return column.Conversion switch
        {
            "centsToDecimal" => random.NextInt64(99, 250_000),
            "unixSecondsToIso" => 1_700_000_000L + random.NextInt64(0, 60_000_000),
            "unixMillisToIso" => 1_700_000_000_000L + random.NextInt64(0, 60_000_000_000),
            "boolean" => random.Next(2),
            "int64" => random.NextInt64(0, 1_000_000),
            "double" or "decimal" => Math.Round(random.NextDouble() * 1000, 2),
            "isoDateTime" => new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(random.Next(0, 28_000_000)).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
            "guid" => SeededGuid(random.NextInt64()),
            "json" => $$"""{"theme":"{{(random.Next(2) == 0 ? "dark" : "light")}}","pageSize":{{random.Next(10, 100)}}}""",
            "lower" when name.Contains("Email", StringComparison.OrdinalIgnoreCase) => $"{Pick(Names, random).ToUpperInvariant()}.{n}@Example.com",
            "lower" => Pick(Statuses, random),
            "upper" => Pick(Countries, random),
            "trim" => $"  {Pick(Names, random)} ",
            _ when column.Kind == ColumnKind.Integer => random.NextInt64(1, Math.Max(2, n / 10 + 2)),
            _ when name.Contains("City", StringComparison.OrdinalIgnoreCase) => Pick(Cities, random),
            _ when name.Contains("Currency", StringComparison.OrdinalIgnoreCase) => Pick(Currencies, random),
            _ when name.Contains("Country", StringComparison.OrdinalIgnoreCase) => Pick(Countries, random),
            _ when name.Contains("Name", StringComparison.OrdinalIgnoreCase) => Pick(Names, random),
            _ => $"{name.ToLowerInvariant()}-{random.Next(1000)}",
        };
    }

    private static string Pick(string[] values, Random random) => values[random.Next(values.Length)];

    private static string SeededGuid(long n)
    {
        Span<byte> bytes = stackalloc byte[16];
        BitConverter.TryWriteBytes(bytes, n);
        BitConverter.TryWriteBytes(bytes[8..], n * 2654435761L);
        return new Guid(bytes).ToString("D");
    }

    private static async Task<long> CountAsync(SqliteConnection connection, string table, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COALESCE(MAX(rowid), 0) FROM {Identifiers.QuoteSqlite(table)}";
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
