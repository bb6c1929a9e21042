using System.Globalization;
using Rollout.Core.Spec;

namespace Rollout.Storage.Sqlite;

/// <summary>
/// The four triggers that keep a table of maintained bucket digests (<c>&lt;owner&gt;__qd</c>) in step with the table they
/// watch, for both embedded stores: on insert the new row is added; on update a row changed in place moves its bucket's
/// sums in one statement, any other update removes the old row and adds the new one; on delete the old row is removed.
/// Short names: the owner's name may take all but a few of an identifier's 128 characters.
/// </summary>
internal static class BucketTriggers
{
    private static readonly string[] Suffixes = ["i", "u", "m", "d"];

    /// <summary>Drops the triggers (set-up replaces them every time).</summary>
    /// <param name="owner">Unquoted name the bucket table is named after.</param>
    public static string Drop(string owner) => string.Join(" ", Suffixes.Select(s => $"DROP TRIGGER IF EXISTS {Name(owner, s)};"));

    /// <summary>Creates the triggers.</summary>
    /// <param name="owner">Unquoted name the bucket table is named after.</param>
    /// <param name="table">Quoted name of the watched table.</param>
    /// <param name="add">Statement adding a row (given <c>NEW</c> or <c>OLD</c>) to its bucket.</param>
    /// <param name="remove">Statement removing a row from its bucket.</param>
    /// <param name="inPlace">Condition of an update that keeps the row live under the same key.</param>
    /// <param name="move">Statement moving the sums of such an update.</param>
    public static string Create(string owner, string table, Func<string, string> add, Func<string, string> remove, string inPlace, string move) =>
        string.Create(CultureInfo.InvariantCulture, $"""
            CREATE TRIGGER {Name(owner, "i")} AFTER INSERT ON {table} BEGIN
              {add("NEW")}
            END;
            CREATE TRIGGER {Name(owner, "u")} AFTER UPDATE ON {table} WHEN NOT ({inPlace}) BEGIN
              {remove("OLD")}
              {add("NEW")}
            END;
            CREATE TRIGGER {Name(owner, "m")} AFTER UPDATE ON {table} WHEN {inPlace} BEGIN
              {move}
            END;
            CREATE TRIGGER {Name(owner, "d")} AFTER DELETE ON {table} BEGIN
              {remove("OLD")}
            END;
            """);

    private static string Name(string owner, string suffix) => Identifiers.QuoteSqlite($"{owner}__qd_{suffix}");
}
