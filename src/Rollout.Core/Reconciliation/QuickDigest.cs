namespace Rollout.Core.Reconciliation;

/// <summary>
/// The digest of one live row's (key, source version) for quick reconciliation of tables with a single integer
/// key, in arithmetic that SQL can evaluate too, so that the source side sums it in one aggregate query over the
/// table and its change-tracking table, and the target sums the value it stored at write time: a clean segment
/// costs two aggregate queries and no row leaves either database. <c>h = ((key mod P) × A + version) mod P</c>,
/// digest <c>h² mod P</c> with P = 2³¹ − 1 and A = 48271 (the square makes offsetting errors in one segment
/// unlikely to cancel; every intermediate value fits in 64 bits).
/// </summary>
public static class QuickDigest
{
    /// <summary>P = 2³¹ − 1.</summary>
    public const long Modulus = 2_147_483_647;

    /// <summary>A = 48271.</summary>
    public const long Multiplier = 48_271;

    /// <summary>The digest of a live row.</summary>
    /// <param name="key">The row's integer key.</param>
    /// <param name="version">Its source version (non-negative).</param>
    public static long Of(long key, long version)
    {
        var h = ((((key % Modulus) + Modulus) % Modulus * Multiplier) + (version % Modulus)) % Modulus;
        return h * h % Modulus;
    }

    /// <summary>The same digest as a SQL expression over a key and a version expression.</summary>
    /// <param name="key">SQL expression of the integer key.</param>
    /// <param name="version">SQL expression of the version.</param>
    public static string Sql(string key, string version)
    {
        var h = HashSql(key, version);
        return $"({h} * {h} % {Modulus})";
    }

    /// <summary>The inner value <c>h</c> (before squaring) as a SQL expression, for queries that square it once per row.</summary>
    /// <param name="key">SQL expression of the integer key.</param>
    /// <param name="version">SQL expression of the version.</param>
    public static string HashSql(string key, string version) =>
        $"(((({key} % {Modulus}) + {Modulus}) % {Modulus} * {Multiplier} + ({version} % {Modulus})) % {Modulus})";
}
