/**
 * The layout of a snapshot file as etcd writes it: a bbolt database in whole 512-byte blocks,
 * followed by the SHA-256 of the database. Kept apart from snapshot.ts (which builds and reads
 * such files with the storage engine) so that `etcdctl-ts snapshot save`, which only receives
 * one, does not load the storage engine.
 */

/** The SHA-256 etcd appends to a snapshot. */
export const SHA256_BYTES = 32;
/** etcd's test for an appended hash: the database is a whole number of 512-byte blocks. */
const HASH_ALIGN_BYTES = 512;

/** etcd's hasChecksum: a file whose size is 32 more than a multiple of 512 ends with a SHA-256. */
export function hasSnapshotHash(fileBytes: number): boolean {
  return fileBytes % HASH_ALIGN_BYTES === SHA256_BYTES;
}
