using Rollout.Core.Spec;

namespace Rollout.Storage.SqlServer;

/// <summary>Quoting and validation of the names that reach T-SQL.</summary>
public static class SqlServerIdentifier
{
    /// <summary>
    /// Bracket-quotes a name exactly as T-SQL's <c>QUOTENAME(name, '[')</c> does: <c>[name]</c>, with every <c>]</c>
    /// doubled. Names from a spec are also validated (<see cref="Column"/>, <see cref="SqlServerTableName.Parse"/>) before
    /// they get here; quoting is the second line of defence, not the first.
    /// </summary>
    /// <param name="name">Any name of at most 128 characters.</param>
    public static string Quote(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is 0 or > Identifiers.MaxSqlIdentifierLength)
        {
            throw new ArgumentException($"A SQL Server identifier has 1 to {Identifiers.MaxSqlIdentifierLength} characters.", nameof(name));
        }

        return "[" + name.Replace("]", "]]", StringComparison.Ordinal) + "]";
    }

    /// <summary>A validated column name from a spec, quoted.</summary>
    /// <param name="name">Column name.</param>
    /// <exception cref="ArgumentException">The name is not a plain SQL identifier.</exception>
    public static string Column(string name) =>
        Identifiers.IsSqlIdentifier(name) ? Quote(name) : throw new ArgumentException($"'{name}' is not a plain SQL column name (letters, digits and underscores).", nameof(name));
}

/// <summary>A table name from a spec: <c>schema.table</c> or <c>table</c> (schema <c>dbo</c>), each part a plain SQL identifier.</summary>
/// <param name="Schema">Schema name.</param>
/// <param name="Table">Table name.</param>
public sealed record SqlServerTableName(string Schema, string Table)
{
    /// <summary>Parses and validates a spec's table name.</summary>
    /// <param name="name"><c>schema.table</c> or <c>table</c>.</param>
    /// <exception cref="ArgumentException">More than two parts, or a part that is not a plain SQL identifier.</exception>
    public static SqlServerTableName Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var parts = name.Split('.');
        var (schema, table) = parts.Length switch
        {
            1 => ("dbo", parts[0]),
            2 => (parts[0], parts[1]),
            _ => throw new ArgumentException($"'{name}' is not a table name: use table or schema.table.", nameof(name)),
        };
        if (!Identifiers.IsSqlIdentifier(schema) || !Identifiers.IsSqlIdentifier(table))
        {
            throw new ArgumentException($"'{name}' is not a table name: schema and table must be plain SQL identifiers (letters, digits and underscores).", nameof(name));
        }

        return new SqlServerTableName(schema, table);
    }

    /// <summary>The quoted two-part name, <c>[schema].[table]</c>.</summary>
    public string Quoted => SqlServerIdentifier.Quote(Schema) + "." + SqlServerIdentifier.Quote(Table);

    /// <inheritdoc />
    public override string ToString() => Schema + "." + Table;
}
