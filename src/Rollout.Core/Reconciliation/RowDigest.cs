using System.Buffers.Binary;
using System.IO.Hashing;
using Rollout.Core.Translation;

namespace Rollout.Core.Reconciliation;

/// <summary>
/// A 31-bit digest of one row's (source version, content hash), stored with each target document so that a
/// store can sum the digests of a key range in one aggregate query. Two ranges with the same row count and the
/// same sum are taken as equal (a false match needs two differing rows whose digests cancel out exactly);
/// 31 bits keep the sum of any range exact in a 64-bit integer.
/// </summary>
public static class RowDigest
{
    /// <summary>The digest of a row, or of a tombstone when <paramref name="hash"/> is null.</summary>
    /// <param name="version">Source version.</param>
    /// <param name="hash">Content hash, null for a tombstone.</param>
    public static long Of(long version, ContentHash? hash)
    {
        Span<byte> bytes = stackalloc byte[25];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, version);
        if (hash is { } h)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(bytes[8..], h.Value);
            bytes[24] = 1;
        }

        return (long)(XxHash3.HashToUInt64(bytes) & 0x7FFF_FFFF);
    }
}
