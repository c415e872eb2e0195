/**
 * `snapshot restore`: a new member's data dir from a snapshot in etcd's format (a bbolt file,
 * from etcd or etcd-ts, with or without the SHA-256 etcd appends), as etcd's restore builds
 * one:
 *
 * - the backend gets every bucket of the snapshot (key values re-encoded from mvccpb.KeyValue
 *   into the store's encoding), except the members, which are replaced by the new cluster's
 *   (from --initial-cluster and --initial-cluster-token, so ids are etcd's);
 * - the revision history, compaction state, leases, alarms and auth stay as they are;
 * - the consistent index is set to the number of members (term 1), and the raft state is a
 *   snapshot at that index whose configuration has every member as a voter: the WAL of the new
 *   cluster starts right after the restored state, so no member applies anything twice.
 *
 * Nothing is left behind when it fails: the data dir (and WAL dir) it created are removed.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KeyValue } from '../proto/index.ts';
import { encodeSnapshot as encodeRaftSnapshot } from '../raft/index.ts';
import { Backend, BUCKET_NAMES, Bucket, type BucketName, putConsistentIndex } from '../storage/backend/index.ts';
import { BboltCorruptError, BboltReader } from '../storage/bbolt/index.ts';
import { encodeKeyValue } from '../storage/mvcc/codec.ts';
import { Snapshotter } from '../storage/snap/index.ts';
import { Wal } from '../storage/wal/index.ts';
import { clusterIdFromMemberIds, memberIdFromPeerUrls } from './ids.ts';
import { encodeMember, type Member } from './membership.ts';
import { encodeWalMetadata } from './server.ts';
import { verifySnapshotHash } from './snapshot.ts';

/** The restored state is a raft snapshot of this term (etcd restores at term 1). */
const RESTORE_TERM = 1;
/** The backend commits at least every this many entries... */
const COMMIT_EVERY_ENTRIES = 20_000;
/** ...or this many bytes. */
const COMMIT_EVERY_BYTES = 16 * 1024 * 1024;
const DIR_MODE = 0o700;
const REVISION_KEY_BYTES = 17;
const TOMBSTONE_KEY_BYTES = 18;
const EMPTY = new Uint8Array(0);

export interface RestoreOptions {
  /** The snapshot file. */
  snapshotPath: string;
  /** The new data dir; it must not exist. */
  dataDir: string;
  /** The WAL dir (default `<data-dir>/member/wal`); it must not exist. */
  walDir?: string;
  /** This member's name in `initialCluster`. */
  name: string;
  /** name -> peer URLs of every member of the new cluster. */
  initialCluster: ReadonlyMap<string, readonly string[]>;
  initialClusterToken: string;
  initialAdvertisePeerUrls: readonly string[];
  /** Accept a snapshot without its SHA-256 (a copied db file), and do not check it when present. */
  skipHashCheck?: boolean;
}

export interface RestoreResult {
  dataDir: string;
  walDir: string;
  snapDir: string;
  memberId: bigint;
  clusterId: bigint;
  members: Member[];
  /** The store's revision in the snapshot (its last revision). */
  revision: number;
  /** Entries written to the backend, over all buckets. */
  entries: number;
  /** The raft index the new cluster starts after. */
  consistentIndex: number;
}

export class RestoreError extends Error {
  readonly code = 'ERR_RESTORE';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RestoreError';
  }
}

/** Builds a data dir from `opts.snapshotPath`; see the module comment for what it holds. */
export async function restoreSnapshot(opts: RestoreOptions): Promise<RestoreResult> {
  const dataDir = resolve(opts.dataDir);
  const memberDir = join(dataDir, 'member');
  const snapDir = join(memberDir, 'snap');
  const walDir = opts.walDir !== undefined && opts.walDir !== '' ? resolve(opts.walDir) : join(memberDir, 'wal');
  // etcd's order: the cluster configuration, then the target directories, then the file.
  const { self, members, clusterId } = newCluster(opts);
  if (await exists(dataDir)) throw new RestoreError(`data-dir ${JSON.stringify(opts.dataDir)} exists`);
  if (await exists(walDir)) throw new RestoreError(`wal-dir ${JSON.stringify(opts.walDir ?? walDir)} exists`);
  const dbBytes = await verifySnapshotHash(opts.snapshotPath, opts.skipHashCheck === true);
  const reader = await BboltReader.open(opts.snapshotPath, { sizeBytes: dbBytes });
  let created = false;
  try {
    const problems = await reader.check();
    if (problems.length > 0) {
      throw new BboltCorruptError(
        `snapshot file integrity check failed. ${problems.length} errors found.\n${problems.slice(0, 20).join('\n')}`,
      );
    }
    created = true;
    await mkdir(snapDir, { recursive: true, mode: DIR_MODE });
    const consistentIndex = members.length;
    const backend = Backend.open({ dir: join(snapDir, 'db') });
    let copied: { entries: number; revision: number };
    try {
      copied = await copyBuckets(reader, backend);
      for (const m of members) backend.put(Bucket.members, Buffer.from(m.id.toString(16)), encodeMember(m));
      putConsistentIndex(backend, consistentIndex, RESTORE_TERM);
      await backend.forceCommit();
      await backend.sync();
    } finally {
      await backend.close();
    }
    const voters = members.map((m) => m.id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const raftSnapshot = encodeRaftSnapshot({
      metadata: { index: consistentIndex, term: RESTORE_TERM, confState: { voters, learners: [] } },
      data: EMPTY,
    });
    await new Snapshotter(snapDir).save({ index: consistentIndex, term: RESTORE_TERM, data: raftSnapshot });
    // The WAL last: a WAL is what makes a data dir a member that restarts rather than one that starts.
    await mkdir(walDir, { recursive: true, mode: DIR_MODE });
    const wal = await Wal.create(walDir, encodeWalMetadata(self.id, clusterId));
    try {
      await wal.saveSnapshot({ index: consistentIndex, term: RESTORE_TERM });
      await wal.save({ term: RESTORE_TERM, vote: 0n, commit: consistentIndex }, []);
    } finally {
      await wal.close();
    }
    return {
      dataDir,
      walDir,
      snapDir,
      memberId: self.id,
      clusterId,
      members,
      revision: copied.revision,
      entries: copied.entries,
      consistentIndex,
    };
  } catch (err) {
    if (created) {
      await rm(dataDir, { recursive: true, force: true });
      await rm(walDir, { recursive: true, force: true });
    }
    throw err;
  } finally {
    await reader.close();
  }
}

/** The new cluster's members and ids, derived as etcd derives them; checks this member's place in it. */
function newCluster(opts: RestoreOptions): { self: Member; members: Member[]; clusterId: bigint } {
  const members: Member[] = [...opts.initialCluster.entries()].map(([name, urls]) => ({
    id: memberIdFromPeerUrls(urls, opts.initialClusterToken),
    name,
    peerUrls: [...urls],
    clientUrls: [],
    isLearner: false,
  }));
  const self = members.find((m) => m.name === opts.name);
  if (self === undefined) {
    throw new RestoreError(
      `couldn't find local name ${JSON.stringify(opts.name)} in the initial cluster configuration`,
    );
  }
  const advertised = [...opts.initialAdvertisePeerUrls].sort().join(',');
  if ([...self.peerUrls].sort().join(',') !== advertised) {
    throw new RestoreError(
      `--initial-cluster has ${self.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${opts.initialAdvertisePeerUrls.join(',')}`,
    );
  }
  const ids = new Set(members.map((m) => m.id));
  if (ids.size !== members.length) throw new RestoreError('--initial-cluster names the same peer URLs twice');
  return { self, members, clusterId: clusterIdFromMemberIds(members.map((m) => m.id)) };
}

/**
 * Copies every bucket the backend knows from the snapshot, but the members (the new cluster has
 * its own), the applied index and term (set afterwards); `key` values become the store's encoding.
 */
async function copyBuckets(reader: BboltReader, backend: Backend): Promise<{ entries: number; revision: number }> {
  const known = new Set<string>(BUCKET_NAMES);
  let entries = 0;
  let revision = 0;
  let pendingEntries = 0;
  let pendingBytes = 0;
  for (const bucket of await reader.buckets()) {
    const name = bucket.name.toString('latin1');
    if (!known.has(name) || name === Bucket.members || name === Bucket.membersRemoved) continue;
    const target = name as BucketName;
    for await (const leaf of reader.entries(bucket)) {
      for (let i = 0; i < leaf.keys.length; i++) {
        // Views into the reader's window: the backend keeps what it is given until it commits.
        const key = Buffer.from(leaf.keys[i]!);
        let value: Uint8Array = Buffer.from(leaf.values[i]!);
        if (target === Bucket.key) {
          value = storeValueOf(key, value);
          revision = Number(key.readBigUInt64BE(0));
        } else if (target === Bucket.meta && (isMetaKey(key, 'consistent_index') || isMetaKey(key, 'term'))) {
          continue;
        }
        backend.put(target, key, value);
        entries++;
        pendingEntries++;
        pendingBytes += key.length + value.length;
        if (pendingEntries >= COMMIT_EVERY_ENTRIES || pendingBytes >= COMMIT_EVERY_BYTES) {
          await backend.forceCommit();
          pendingEntries = 0;
          pendingBytes = 0;
        }
      }
    }
  }
  return { entries, revision };
}

/** A `key` bucket value in etcd's format (mvccpb.KeyValue) as the store encodes it. */
function storeValueOf(revisionKey: Buffer, etcdValue: Uint8Array): Uint8Array {
  const tombstone = revisionKey.length === TOMBSTONE_KEY_BYTES && revisionKey[REVISION_KEY_BYTES] === 0x74;
  if ((revisionKey.length !== REVISION_KEY_BYTES && !tombstone) || revisionKey[8] !== 0x5f) {
    throw new BboltCorruptError(`key bucket: ${revisionKey.toString('hex')} is not a revision`);
  }
  let kv: KeyValue;
  try {
    kv = KeyValue.decode(etcdValue);
  } catch (err) {
    throw new BboltCorruptError(`key bucket: the value at ${revisionKey.toString('hex')} is not a KeyValue`, {
      cause: err,
    });
  }
  if (kv.key.length === 0)
    throw new BboltCorruptError(`key bucket: the value at ${revisionKey.toString('hex')} has no key`);
  if (tombstone) return encodeKeyValue(kv.key, 0, 0, 0n, EMPTY);
  const main = revisionKey.readBigUInt64BE(0);
  if (kv.modRevision !== BigInt.asIntN(64, main)) {
    throw new BboltCorruptError(
      `key bucket: the value at revision ${main} says it was modified at revision ${kv.modRevision}`,
    );
  }
  return encodeKeyValue(kv.key, Number(kv.createRevision), Number(kv.version), kv.lease, kv.value);
}

function isMetaKey(key: Uint8Array, name: string): boolean {
  return Buffer.from(key).toString('latin1') === name;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
