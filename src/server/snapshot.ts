/**
 * Snapshots in etcd's own format: a bbolt database file holding etcd's buckets, followed (on
 * the wire and in saved files) by the SHA-256 of the database, as etcd's Maintenance.Snapshot
 * sends it and `etcdctl snapshot save` stores it.
 *
 * The backend's consistent snapshot stream (one LMDB read transaction) is turned into a bbolt
 * file in one pass: `key` values are re-encoded as mvccpb.KeyValue (etcd-format.ts), the other
 * buckets are already stored as etcd stores them, and `cluster/clusterVersion` is added when
 * the backend has none. The file goes to a temporary file beside the backend first: its meta
 * pages, at the start, are only known at the end, and etcd's stream announces the remaining
 * bytes in every message. Memory stays bounded by the backend stream's chunks and one bbolt
 * page per tree level.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, open, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32c } from '../storage/backend/crc32c.ts';
import { type Backend, BUCKET_NAMES, Bucket, MetaKey } from '../storage/backend/index.ts';
import { SnapshotReader } from '../storage/backend/snapshot.ts';
import { BboltCorruptError, BboltReader, BboltWriter, FIRST_BODY_PAGE, PAGE_SIZE } from '../storage/bbolt/index.ts';
import { etcdKeyValueBytes } from '../storage/mvcc/etcd-format.ts';
import { hasSnapshotHash, SHA256_BYTES } from './snapshot-file.ts';

/** etcd's snapshotSendBufferSize: bytes of database per SnapshotResponse. */
export const SNAPSHOT_SEND_CHUNK_BYTES = 32 * 1024;
/** The cluster version a snapshot records (etcd-ts speaks etcd 3.5's API). */
export const SNAPSHOT_CLUSTER_VERSION = '3.5.0';
/** Pages are written to the file once this many bytes are ready. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Temporary snapshot files: `<prefix><random>.part` beside the backend. */
const TEMP_PREFIX = 'maintenance-snapshot-';
const TEMP_SUFFIX = '.part';

const CLUSTER_VERSION_KEY = Buffer.from('clusterVersion');
const REVISION_KEY_BYTES = 17;

/** What a snapshot file holds, as `etcdctl snapshot status` reports it. */
export interface SnapshotStatus {
  /** CRC-32C over every bucket name, key and value, in bbolt order. */
  hash: number;
  /** The main revision of the last entry of the `key` bucket. */
  revision: number;
  /** Entries over all buckets. */
  totalKey: number;
  /** bbolt's Tx.Size(): pages times page size. */
  totalSize: number;
}

export interface EtcdSnapshotFile {
  path: string;
  /** Bytes of the database (without the hash etcd appends on the wire). */
  sizeBytes: number;
  /** The store's revision in the snapshot (last revision in `key`, at least the compacted one). */
  revision: number;
  entries: number;
}

/** The temporary files of the snapshots this process is serving. */
const activeTemps = new Set<string>();

/**
 * Writes the backend as a bbolt file at `path` (created, or truncated). The backend keeps
 * serving reads and writes; the file is the state of one read transaction.
 */
export async function writeEtcdSnapshot(backend: Backend, path: string): Promise<EtcdSnapshotFile> {
  const fh = await open(path, 'w', 0o600);
  try {
    const result = await writeSnapshotTo(backend, fh);
    await fh.sync();
    return { path, ...result };
  } finally {
    await fh.close();
  }
}

async function writeSnapshotTo(
  backend: Backend,
  fh: FileHandle,
): Promise<{ sizeBytes: number; revision: number; entries: number }> {
  const writer = new BboltWriter();
  const cluster = new ClusterVersionMerge(writer);
  let offset = FIRST_BODY_PAGE * PAGE_SIZE;
  let bucket = -1;
  let revision = 0;
  const flush = async (): Promise<void> => {
    for (const chunk of writer.take()) {
      await writeAll(fh, chunk, offset);
      offset += chunk.length;
    }
  };
  const openBucketsUpTo = (id: number): void => {
    while (bucket < id) {
      if (BUCKET_NAMES[bucket] === Bucket.cluster) cluster.end();
      bucket++;
      writer.bucket(Buffer.from(BUCKET_NAMES[bucket]!));
    }
  };
  const reader = new SnapshotReader();
  for await (const chunk of backend.snapshotStream()) {
    reader.push(chunk);
    for (let i = 0; i < reader.keys.length; i++) {
      const id = reader.buckets[i]!;
      if (id < bucket) throw new Error(`backend snapshot: bucket ${id} after bucket ${bucket}`);
      openBucketsUpTo(id);
      const key = reader.keys[i]!;
      const value = reader.values[i]!;
      const name = BUCKET_NAMES[id]!;
      if (name === Bucket.key) {
        writer.put(key, etcdKeyValueBytes(key, value));
        revision = revisionMainOf(key);
      } else if (name === Bucket.cluster) {
        cluster.put(key, value);
      } else {
        writer.put(key, value);
        if (name === Bucket.meta && isCompactRevKey(key) && value.length === REVISION_KEY_BYTES) {
          revision = Math.max(revision, revisionMainOf(value));
        }
      }
    }
    reader.drain();
    if (writer.readyBytes >= WRITE_BATCH_BYTES) await flush();
  }
  reader.end();
  openBucketsUpTo(BUCKET_NAMES.length - 1);
  if (BUCKET_NAMES[bucket] === Bucket.cluster) cluster.end();
  const summary = writer.finish();
  await flush();
  await writeAll(fh, summary.head, 0);
  if (offset !== summary.sizeBytes)
    throw new Error(`snapshot: wrote ${offset} bytes of a ${summary.sizeBytes}-byte file`);
  return { sizeBytes: summary.sizeBytes, revision, entries: summary.entries };
}

/** Passes the `cluster` bucket through, adding clusterVersion in its place if the backend has none. */
class ClusterVersionMerge {
  private readonly writer: BboltWriter;
  private written = false;

  constructor(writer: BboltWriter) {
    this.writer = writer;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const cmp = Buffer.compare(key, CLUSTER_VERSION_KEY);
    if (cmp === 0) this.written = true;
    else if (cmp > 0) this.end();
    this.writer.put(key, value);
  }

  end(): void {
    if (this.written) return;
    this.written = true;
    this.writer.put(CLUSTER_VERSION_KEY, Buffer.from(SNAPSHOT_CLUSTER_VERSION));
  }
}

/**
 * A snapshot being served: the bbolt file in a temporary file beside the backend, read back in
 * etcd's chunks with the SHA-256 at the end. `close()` removes the file; call it in any case.
 */
export class EtcdSnapshotStream {
  readonly revision: number;
  readonly sizeBytes: number;
  private readonly path: string;
  private closed = false;

  private constructor(file: EtcdSnapshotFile) {
    this.path = file.path;
    this.revision = file.revision;
    this.sizeBytes = file.sizeBytes;
  }

  /** Writes the backend's snapshot to a temporary file beside it. */
  static async open(backend: Backend): Promise<EtcdSnapshotStream> {
    const dir = dirname(backend.dir);
    await removeStaleTemps(dir);
    const path = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`);
    activeTemps.add(path);
    try {
      return new EtcdSnapshotStream(await writeEtcdSnapshot(backend, path));
    } catch (err) {
      activeTemps.delete(path);
      await rm(path, { force: true });
      throw err;
    }
  }

  /**
   * The database in chunks of `chunkBytes`, each with the bytes still to come after it, then a
   * last chunk holding the SHA-256 of everything before (remaining 0), as etcd sends them.
   */
  async *chunks(chunkBytes = SNAPSHOT_SEND_CHUNK_BYTES): AsyncGenerator<{ blob: Uint8Array; remainingBytes: number }> {
    if (this.closed) throw new Error('snapshot: stream already closed');
    const fh = await open(this.path, 'r');
    try {
      const sha = createHash('sha256');
      let sent = 0;
      while (sent < this.sizeBytes) {
        // A fresh buffer per message: gRPC may still hold the previous one.
        const blob = Buffer.allocUnsafe(Math.min(chunkBytes, this.sizeBytes - sent));
        await readAll(fh, blob, sent);
        sha.update(blob);
        sent += blob.length;
        yield { blob, remainingBytes: this.sizeBytes - sent };
      }
      yield { blob: sha.digest(), remainingBytes: 0 };
    } finally {
      await fh.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    activeTemps.delete(this.path);
    await rm(this.path, { force: true });
  }
}

/** Temporary files left by a process that died while serving a snapshot. */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX) && !activeTemps.has(path)) {
      await rm(path, { force: true });
    }
  }
}

/**
 * Checks the SHA-256 at the end of a snapshot file against its content. Returns the size of
 * the database part; throws when the hash is absent (unless `skipHashCheck`) or wrong.
 */
export async function verifySnapshotHash(path: string, skipHashCheck: boolean): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    if (!hasSnapshotHash(size)) {
      if (skipHashCheck) return size;
      throw new SnapshotHashError('snapshot missing hash but --skip-hash-check=false');
    }
    const dbBytes = size - SHA256_BYTES;
    if (skipHashCheck) return dbBytes;
    const sha = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let off = 0; off < dbBytes; ) {
      const n = Math.min(buf.length, dbBytes - off);
      await readAll(fh, buf.subarray(0, n), off);
      sha.update(buf.subarray(0, n));
      off += n;
    }
    const stored = Buffer.alloc(SHA256_BYTES);
    await readAll(fh, stored, dbBytes);
    if (!sha.digest().equals(stored)) throw new SnapshotHashError('expected sha256 does not match the snapshot');
    return dbBytes;
  } finally {
    await fh.close();
  }
}

export class SnapshotHashError extends Error {
  readonly code = 'ERR_SNAPSHOT_HASH';

  constructor(message: string) {
    super(message);
    this.name = 'SnapshotHashError';
  }
}

/**
 * etcd's snapshot status: checks the file as bbolt's Tx.Check does, then hashes every bucket
 * (name, then each key and value) with CRC-32C, counts the entries and takes the revision of the
 * last `key` entry. A file with an appended hash is read without it.
 */
export async function snapshotStatus(path: string): Promise<SnapshotStatus> {
  await stat(path);
  const reader = await BboltReader.open(path);
  try {
    const problems = await reader.check();
    if (problems.length > 0) {
      throw new BboltCorruptError(
        `snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join('\n')}`,
      );
    }
    let hash = 0;
    let revision = 0;
    let totalKey = 0;
    for (const bucket of await reader.buckets()) {
      hash = crc32c(bucket.name, hash);
      const isKey = bucket.name.toString('latin1') === Bucket.key;
      for await (const leaf of reader.entries(bucket)) {
        for (let i = 0; i < leaf.keys.length; i++) {
          const key = leaf.keys[i]!;
          hash = crc32c(leaf.values[i]!, crc32c(key, hash));
          if (isKey && key.length >= 8) revision = revisionMainOf(key);
          totalKey++;
        }
      }
    }
    return { hash, revision, totalKey, totalSize: reader.dbBytes };
  } finally {
    await reader.close();
  }
}

function revisionMainOf(key: Uint8Array): number {
  return Number(Buffer.from(key.buffer, key.byteOffset, 8).readBigUInt64BE(0));
}

function isCompactRevKey(key: Uint8Array): boolean {
  return (
    Buffer.compare(key, MetaKey.finishedCompactRev) === 0 || Buffer.compare(key, MetaKey.scheduledCompactRev) === 0
  );
}

async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

async function readAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error('snapshot: unexpected end of file');
    done += bytesRead;
  }
}
