using System.Data;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.SqlClient;
using Rollout.Core.DataPath;

namespace Rollout.Storage.SqlServer;

/// <summary>The T-SQL of dead letters (fixed table name; every value a parameter).</summary>
internal static class DeadLetterSql
{
    private const string Binary = "COLLATE " + SourceTableSql.BinaryCollation;

    /// <summary>
    /// One open record per (feature, key): a replayed batch or a newer failure of the same key updates it (the newest
    /// version's errors win), otherwise a new record. Run in a transaction: UPDLOCK and HOLDLOCK keep two writers from both inserting.
    /// </summary>
    public static SqlStatement Add(DeadLetter letter, string errorsJson)
    {
        ArgumentNullException.ThrowIfNull(letter);
        return new($"""
            UPDATE {SqlServerSchema.DeadLettersTable} WITH (UPDLOCK, HOLDLOCK)
              SET version = CASE WHEN @version > version THEN @version ELSE version END,
                  errors = CASE WHEN @version >= version THEN @errors ELSE errors END
              WHERE feature {Binary} = @feature AND key_hash = @key_hash AND resolved_at IS NULL;
            IF @@ROWCOUNT = 0
              INSERT INTO {SqlServerSchema.DeadLettersTable} (feature, source_key, key_hash, version, errors, first_seen, attempts, resolved_at)
                VALUES (@feature, @key, @key_hash, @version, @errors, @first_seen, 1, NULL);
            """,
            [Feature(letter.Feature), new SqlParameter("@key", SqlDbType.NVarChar, -1) { Value = letter.Key.Text }, KeyHash(letter.Key),
             new SqlParameter("@version", SqlDbType.BigInt) { Value = letter.Version }, Errors(errorsJson),
             new SqlParameter("@first_seen", SqlDbType.DateTimeOffset) { Value = letter.FirstSeen }]);
    }

    public static SqlStatement List(string feature, bool includeResolved) => new($"""
        SELECT id, feature, source_key, version, errors, first_seen, attempts, resolved_at FROM {SqlServerSchema.DeadLettersTable}
        WHERE feature {Binary} = @feature{(includeResolved ? string.Empty : " AND resolved_at IS NULL")} ORDER BY id
        """, [Feature(feature)]);

    /// <summary>The open records of a feature, counted on the filtered index of open records (UX_rollout_dead_letters_open).</summary>
    public static SqlStatement CountOpen(string feature) => new($"""
        SELECT COUNT_BIG(*) FROM {SqlServerSchema.DeadLettersTable}
        WHERE feature {Binary} = @feature AND resolved_at IS NULL
        """, [Feature(feature)]);

    /// <summary>A retry: counted; resolved only if it applied at least the record's version (a newer failure recorded meanwhile keeps it open).</summary>
    public static SqlStatement RecordRetry(long id, bool resolved, long appliedVersion, string errorsJson, DateTimeOffset now) => resolved
        ? new($"UPDATE {SqlServerSchema.DeadLettersTable} SET attempts = attempts + 1, resolved_at = CASE WHEN version <= @applied THEN @now ELSE NULL END WHERE id = @id",
            [Id(id), new SqlParameter("@applied", SqlDbType.BigInt) { Value = appliedVersion }, new SqlParameter("@now", SqlDbType.DateTimeOffset) { Value = now }])
        : new($"UPDATE {SqlServerSchema.DeadLettersTable} SET attempts = attempts + 1, errors = @errors WHERE id = @id", [Id(id), Errors(errorsJson)]);

    /// <summary>SHA-256 of the key's canonical text: the unique index's key (a key's text can exceed an index key's 1,700 bytes).</summary>
    public static byte[] Hash(SourceKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return SHA256.HashData(Encoding.UTF8.GetBytes(key.Text));
    }

    private static SqlParameter KeyHash(SourceKey key) => new("@key_hash", SqlDbType.Binary, 32) { Value = Hash(key) };

    private static SqlParameter Feature(string feature)
    {
        ArgumentNullException.ThrowIfNull(feature);
        return feature.Length <= 63 ? new SqlParameter("@feature", SqlDbType.NVarChar, 63) { Value = feature } : throw new ArgumentException("A feature key has at most 63 characters.", nameof(feature));
    }

    private static SqlParameter Errors(string json) => new("@errors", SqlDbType.NVarChar, -1) { Value = json };

    private static SqlParameter Id(long id) => new("@id", SqlDbType.BigInt) { Value = id };
}
