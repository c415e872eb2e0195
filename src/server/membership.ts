/**
 * The cluster's members as every member agrees on them: changed only by applied raft conf
 * changes (add, remove, update peer URLs, promote) and attribute updates (a member publishing
 * its name and client URLs once it serves), and stored in the backend in etcd's format
 * (`members`: hex id -> member JSON; `members_removed`: hex id -> "removed").
 */
import type { Backend } from '../storage/backend/index.ts';
import { Bucket } from '../storage/backend/index.ts';

export interface Member {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** etcd's Member JSON: `{"id":N,"peerURLs":[...],"name":"...","clientURLs":[...],"isLearner":b}`. */
export function encodeMember(m: Member): Uint8Array {
  const parts = [`"id":${m.id.toString()}`, `"peerURLs":${JSON.stringify(m.peerUrls)}`];
  if (m.name !== '') parts.push(`"name":${JSON.stringify(m.name)}`);
  if (m.clientUrls.length > 0) parts.push(`"clientURLs":${JSON.stringify(m.clientUrls)}`);
  if (m.isLearner) parts.push('"isLearner":true');
  return Buffer.from(`{${parts.join(',')}}`);
}

export function decodeMember(b: Uint8Array): Member {
  const text = Buffer.from(b).toString('utf8');
  // The id is a uint64: read it from the text, not through a JS number.
  const idMatch = /"id"\s*:\s*(\d+)/.exec(text);
  const obj = JSON.parse(text) as { peerURLs?: string[]; name?: string; clientURLs?: string[]; isLearner?: boolean };
  return {
    id: idMatch !== null ? BigInt(idMatch[1]!) : 0n,
    name: obj.name ?? '',
    peerUrls: obj.peerURLs ?? [],
    clientUrls: obj.clientURLs ?? [],
    isLearner: obj.isLearner === true,
  };
}

const hexKey = (id: bigint): Uint8Array => Buffer.from(id.toString(16));

export class Membership {
  private readonly backend: Backend;
  private readonly byId = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();

  constructor(backend: Backend) {
    this.backend = backend;
    const members = backend.range(Bucket.members, new Uint8Array(0), null);
    for (const v of members.values) {
      const m = decodeMember(v);
      this.byId.set(m.id, m);
    }
    for (const k of backend.range(Bucket.membersRemoved, new Uint8Array(0), null).keys) {
      this.removed.add(BigInt(`0x${Buffer.from(k).toString()}`));
    }
  }

  get size(): number {
    return this.byId.size;
  }

  list(): Member[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.byId.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  voters(): Member[] {
    return this.list().filter((m) => !m.isLearner);
  }

  /** The member already using one of `peerUrls`, if any. */
  withPeerUrl(peerUrls: readonly string[]): Member | undefined {
    for (const m of this.byId.values()) if (m.peerUrls.some((u) => peerUrls.includes(u))) return m;
    return undefined;
  }

  add(m: Member): void {
    this.byId.set(m.id, m);
    this.save(m);
  }

  remove(id: bigint): void {
    this.byId.delete(id);
    this.removed.add(id);
    this.backend.delete(Bucket.members, hexKey(id));
    this.backend.put(Bucket.membersRemoved, hexKey(id), Buffer.from('removed'));
  }

  updatePeerUrls(id: bigint, peerUrls: string[]): void {
    const m = this.byId.get(id);
    if (m === undefined) return;
    m.peerUrls = peerUrls;
    this.save(m);
  }

  promote(id: bigint): void {
    const m = this.byId.get(id);
    if (m === undefined) return;
    m.isLearner = false;
    this.save(m);
  }

  setAttributes(id: bigint, name: string, clientUrls: string[]): void {
    const m = this.byId.get(id);
    if (m === undefined) return;
    m.name = name;
    m.clientUrls = clientUrls;
    this.save(m);
  }

  /** A member that published its attributes is serving clients (etcd's IsStarted). */
  isStarted(id: bigint): boolean {
    return (this.byId.get(id)?.name ?? '') !== '';
  }

  private save(m: Member): void {
    this.backend.put(Bucket.members, hexKey(m.id), encodeMember(m));
  }
}

/** etcd's HealthInterval: how long members must have been connected before a reconfiguration. */
export const HEALTH_INTERVAL_MS = 5_000;

/** When this member's stream to a peer came up; null while it is not working (the transport's activeSince). */
export type ActiveSince = (id: bigint) => Date | null;

/** etcd's numConnectedSince: this member, and the voters it has been connected to since `sinceMs`. */
export function countConnectedSince(
  voters: readonly Member[],
  selfId: bigint,
  activeSince: ActiveSince,
  sinceMs: number,
): number {
  let connected = 0;
  for (const m of voters) {
    if (m.id === selfId) {
      connected++;
      continue;
    }
    const since = activeSince(m.id);
    if (since !== null && since.getTime() <= sinceMs) connected++;
  }
  return connected;
}

/**
 * etcd's strict reconfiguration check before adding a member: every voter has been connected to
 * this member for the health interval (else a new voter could leave the cluster without a quorum
 * of live members, and no leader to take the change back).
 */
export function healthyToAdd(
  voters: readonly Member[],
  selfId: bigint,
  activeSince: ActiveSince,
  nowMs: number,
): boolean {
  return countConnectedSince(voters, selfId, activeSince, nowMs - HEALTH_INTERVAL_MS) === voters.length;
}

/**
 * etcd's strict reconfiguration check before removing voter `id`: a member that is down may
 * go; otherwise the live members left without it must still be a quorum of the voters.
 */
export function healthyToRemove(
  voters: readonly Member[],
  selfId: bigint,
  id: bigint,
  activeSince: ActiveSince,
  nowMs: number,
): boolean {
  if (id !== selfId && activeSince(id) === null) return true;
  const active = countConnectedSince(voters, selfId, activeSince, nowMs - HEALTH_INTERVAL_MS);
  return active - 1 >= 1 + Math.floor((voters.length - 1) / 2);
}
