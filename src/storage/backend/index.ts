export {
  Backend,
  type BackendOptions,
  type BackendSize,
  type BackendStats,
  type BucketEntries,
  DEFAULT_BATCH_INTERVAL_MS,
  DEFAULT_BATCH_LIMIT,
  type DefragmentResult,
  type HashIgnore,
  MAX_KEY_BYTES,
} from './backend.ts';
export { BUCKET_NAMES, Bucket, type BucketName } from './buckets.ts';
export { crc32c } from './crc32c.ts';
export * from './errors.ts';
export { type ConsistentIndex, etcdHashIgnores, MetaKey, putConsistentIndex, readConsistentIndex } from './meta.ts';
export { SNAPSHOT_CHUNK_BYTES } from './snapshot.ts';
