namespace Rollout.Core.Reconciliation;

/// <summary>
/// The digest of one live row's (key, source version) for quick reconciliation of tables with a single integer
/// key, in arithmetic that SQL can evaluate too, so that the source side sums it in one aggregate query over the
/// table and its change-tracking table, and the target sums the value it stored at write time: a clean segment
/// costs two aggregate queries and no row leaves either database. With P = 2³¹ − 1:
/// <c>h = ((key mod P) × A + version) mod P</c>, <c>x = h × B mod P</c>, <c>y = x XOR ⌊x / 2¹⁶⌋</c>, digest
/// <c>y² mod P</c>. The xor-shift is what makes a range's sum safe: the earlier digest, <c>h² mod P</c>, is a
/// polynomial in key and version, so structured drift cancelled exactly (versions moved by +1, −1, −1, +1 on keys
/// 8, 10, 12, 14 leave Σ h² unchanged), and a polynomial of any degree has such patterns; no polynomial identity
/// survives the xor-shift. Every intermediate value fits in 64 bits, and XOR is written as
/// <c>(a | b) − (a &amp; b)</c>, which SQLite (no XOR operator) and T-SQL both evaluate.
/// </summary>
public static class QuickDigest
{
    /// <summary>P = 2³¹ − 1.</summary>
    public const long Modulus = 2_147_483_647;

    /// <summary>A = 48271.</summary>
    public const long Multiplier = 48_271;

    /// <summary>B, the multiplier before the xor-shift.</summary>
    public const long Mix = 1_103_515_245;

    /// <summary>The digest of a live row.</summary>
    /// <param name="key">The row's integer key.</param>
    /// <param name="version">Its source version (non-negative).</param>
    public static long Of(long key, long version)
    {
        var h = ((((key % Modulus) + Modulus) % Modulus * Multiplier) + (version % Modulus)) % Modulus;
        var x = h * Mix % Modulus;
        var y = x ^ (x >> 16);
        return y * y % Modulus;
    }

    /// <summary>The same digest as a SQL expression over a key and a version expression.</summary>
    /// <param name="key">SQL expression of the integer key.</param>
    /// <param name="version">SQL expression of the version.</param>
    public static string Sql(string key, string version) => FromMixSql(MixSql(key, version));

    /// <summary>The value <c>x</c> as a SQL expression (a query can compute it once per row and pass it to <see cref="FromMixSql"/>).</summary>
    /// <param name="key">SQL expression of the integer key.</param>
    /// <param name="version">SQL expression of the version.</param>
    public static string MixSql(string key, string version) =>
        $"((((({key} % {Modulus}) + {Modulus}) % {Modulus} * {Multiplier} + ({version} % {Modulus})) % {Modulus}) * {Mix} % {Modulus})";

    /// <summary>The digest as a SQL expression over an expression of <c>x</c> (see <see cref="MixSql"/>).</summary>
    /// <param name="x">SQL expression of x (non-negative, below 2³¹).</param>
    public static string FromMixSql(string x)
    {
        var shifted = $"({x} / 65536)";
        var y = $"(({x} | {shifted}) - ({x} & {shifted}))";
        return $"({y} * {y} % {Modulus})";
    }
}
