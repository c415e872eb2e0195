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
