/**
 * etcd's periodic corruption check (`--experimental-corrupt-check-time`): every interval the
 * leader hashes its key space (HashKV at its current revision), asks every other member for
 * HashKV at that same revision over the peer port (`/members/hashkv`, as etcd), and raises the
 * CORRUPT alarm through raft for a member whose answer cannot agree with its own:
 *
 * - a member ahead of the leader (a larger current revision, or a larger compacted revision);
 * - a member compacted at the same revision as the leader with a different hash;
 * - the leader itself when its own hash changed under it while neither revision moved.
 *
 * A member that cannot answer for the revision (behind it, or compacted past it) is skipped,
 * as etcd skips it. Once CORRUPT is active every member refuses writes with
 * `etcdserver: corrupt cluster` (see the apply in server.ts).
 */
import { AlarmType } from '../proto/index.ts';
import type { Member } from './membership.ts';
import type { MemberLog } from './server.ts';

/** etcd's peer path for HashKV. */
export const PEER_HASHKV_PATH = '/members/hashkv';
/** How long the leader waits for a member's hash. */
const PEER_HASHKV_TIMEOUT_MS = 5000;

/** What the check needs of the member. */
export interface CorruptionCheckTarget {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  leader(): bigint;
  members(): Member[];
  hashKVAt(revision: number): { hash: number; revision: number; compactRevision: number };
  linearizableReadNotify(): Promise<void>;
  proposeAlarm(activate: boolean, alarm: number, memberId: bigint): Promise<unknown>;
}

/** One member's HashKV as it answered over the peer port. */
export interface PeerHash {
  memberId: bigint;
  hash: number;
  /** The member's current revision. */
  revision: number;
  compactRevision: number;
}

export interface CheckOutcome {
  /** Members found corrupt (an alarm was proposed for each). */
  corrupt: bigint[];
  /** Members that answered. */
  answered: bigint[];
}

/** Runs the check every `intervalMs` while this member leads; `stop()` ends it. */
export class CorruptionMonitor {
  private readonly target: CorruptionCheckTarget;
  private readonly intervalMs: number;
  private readonly log: MemberLog;
  private timer: NodeJS.Timeout | undefined = undefined;
  private stopped = false;

  constructor(target: CorruptionCheckTarget, intervalMs: number, log: MemberLog) {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`interval ${intervalMs} ms`);
    this.target = target;
    this.intervalMs = intervalMs;
    this.log = log;
  }

  start(): void {
    this.log.info({ interval: `${this.intervalMs}ms` }, 'enabled corruption checking');
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const t = this.target;
      const run = t.leader() === t.memberId ? this.check() : Promise.resolve();
      run
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'failed to check hash KV'))
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  /** One pass of etcd's checkHashKV (the leader's side). */
  async check(): Promise<CheckOutcome> {
    const t = this.target;
    const first = t.hashKVAt(0);
    const peers = await Promise.all(
      t
        .members()
        .filter((m) => m.id !== t.memberId)
        .map((m) => fetchPeerHash(m, first.revision, t.clusterId).catch(() => undefined)),
    );
    await t.linearizableReadNotify();
    const second = t.hashKVAt(0);
    const corrupt = new Set<bigint>();
    if (
      second.hash !== first.hash &&
      second.revision === first.revision &&
      second.compactRevision === first.compactRevision
    ) {
      this.log.warn({ 'leader-hash': first.hash, 'leader-hash-after': second.hash }, 'found hash mismatch');
      corrupt.add(t.memberId);
    }
    const answered: bigint[] = [];
    for (const p of peers) {
      if (p === undefined) continue;
      answered.push(p.memberId);
      const fields = {
        member: p.memberId.toString(16),
        'leader-revision': second.revision,
        'peer-revision': p.revision,
      };
      if (p.revision > second.revision) {
        this.log.warn(fields, "revision from follower must be less than or equal to leader's");
        corrupt.add(p.memberId);
      }
      if (p.compactRevision > second.compactRevision) {
        this.log.warn(fields, "compact revision from follower must be less than or equal to leader's");
        corrupt.add(p.memberId);
      }
      if (p.compactRevision === first.compactRevision && p.hash !== first.hash) {
        this.log.warn(
          { ...fields, 'leader-hash': first.hash, 'peer-hash': p.hash },
          'same compact revision then hashes must match',
        );
        corrupt.add(p.memberId);
      }
    }
    for (const id of corrupt) {
      await t.proposeAlarm(true, AlarmType.CORRUPT, id);
    }
    return { corrupt: [...corrupt], answered };
  }
}

/** GET <peer>/members/hashkv with `{"revision":N}`, as etcd's leader asks (POST is accepted too). */
export async function fetchPeerHash(member: Member, revision: number, clusterId: bigint): Promise<PeerHash> {
  const errors: string[] = [];
  for (const url of member.peerUrls) {
    try {
      const res = await fetch(new URL(PEER_HASHKV_PATH, url), {
        method: 'POST',
        body: JSON.stringify({ revision }),
        headers: { 'x-etcd-cluster-id': clusterId.toString(16), 'content-type': 'application/json' },
        signal: AbortSignal.timeout(PEER_HASHKV_TIMEOUT_MS),
      });
      const text = await res.text();
      if (res.status !== 200) {
        errors.push(`${url}: HTTP ${res.status} ${text.trim()}`);
        continue;
      }
      return { ...parsePeerHash(text), memberId: member.id };
    } catch (err) {
      errors.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`could not get the hash of member ${member.id.toString(16)}: ${errors.join('; ')}`);
}

/** etcd's HashKVResponse as Go's encoding/json writes it (uint64 ids as numbers, kept exact here). */
export function parsePeerHash(body: string): Omit<PeerHash, 'memberId'> {
  const exact = body.replace(/"(member_id|cluster_id)"\s*:\s*(\d+)/g, '"$1":"$2"');
  const r = JSON.parse(exact) as { header?: { revision?: number }; hash?: number; compact_revision?: number };
  return { hash: r.hash ?? 0, revision: r.header?.revision ?? 0, compactRevision: r.compact_revision ?? 0 };
}

/** The body a member answers `/members/hashkv` with: etcd's HashKVResponse in Go's JSON. */
export function peerHashBody(
  memberId: bigint,
  clusterId: bigint,
  h: { hash: number; currentRevision: number; compactRevision: number },
): string {
  return (
    `{"header":{"cluster_id":${clusterId},"member_id":${memberId},"revision":${h.currentRevision}},` +
    `"hash":${h.hash},"compact_revision":${h.compactRevision}}`
  );
}
