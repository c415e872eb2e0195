/**
 * Leases: granted and revoked through raft (so every member has the same set, with the same
 * attached keys), kept alive and expired by the leader alone. Expiry times exist only on the
 * leader; a member that becomes leader gives every lease a full TTL from then on, so a leader
 * change never expires a lease that a client was keeping alive.
 *
 * The lessor does not touch the key space: revoking returns the keys to delete, and it learns
 * which keys belong to which lease from the store's events (`observe`).
 */
import type { Backend } from '../storage/backend/index.ts';
import { Bucket } from '../storage/backend/index.ts';
import type { MvccEvent } from '../storage/mvcc/index.ts';
import { ServerError, ServerErrorCode } from './errors.ts';

/** etcd's MaxLeaseTTL (about 285 years). */
export const MAX_LEASE_TTL_SEC = 9_000_000_000;
/** etcd's leaseRevokeRate: expired leases revoked per second at most. */
export const LEASE_REVOKE_PER_SEC = 1000;
/** Leases one member holds at most (a bound on memory; etcd has none). */
export const LEASES_MAX = 1_000_000;

export class Lease {
  readonly id: bigint;
  readonly ttlSec: number;
  /** Attached keys, latin1. */
  readonly keys = new Set<string>();
  /** When the leader lets it expire (ms since epoch); 0 when this member does not lead. */
  expiryMs = 0;

  constructor(id: bigint, ttlSec: number) {
    this.id = id;
    this.ttlSec = ttlSec;
  }

  remainingSec(nowMs: number): number {
    if (this.expiryMs === 0) return this.ttlSec;
    return Math.max(0, Math.floor((this.expiryMs - nowMs) / 1000));
  }
}

export interface LessorOptions {
  minTtlSec: number;
  now?: () => number;
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class Lessor {
  private readonly backend: Backend;
  private readonly leases = new Map<bigint, Lease>();
  /** key (latin1) -> lease it is attached to. */
  private readonly keyLease = new Map<string, bigint>();
  readonly minTtlSec: number;
  private readonly now: () => number;
  private primary = false;

  constructor(backend: Backend, opts: LessorOptions) {
    this.backend = backend;
    this.minTtlSec = opts.minTtlSec;
    this.now = opts.now ?? Date.now;
    const { keys, values } = backend.range(Bucket.lease, new Uint8Array(0), null);
    for (let i = 0; i < keys.length; i++) {
      const rec = decodeLeaseRecord(values[i]!);
      this.leases.set(rec.id, new Lease(rec.id, rec.ttlSec));
    }
  }

  /** Called while the store rebuilds its index: `key` lives with `lease`. */
  restoreKey(key: Uint8Array, lease: bigint): void {
    const l = this.leases.get(lease);
    if (l === undefined) return;
    const k = latin1(key);
    l.keys.add(k);
    this.keyLease.set(k, lease);
  }

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  get(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  ids(): bigint[] {
    return [...this.leases.keys()];
  }

  get size(): number {
    return this.leases.size;
  }

  isPrimary(): boolean {
    return this.primary;
  }

  /** Applies a grant; returns the lease with its effective TTL (at least the minimum). */
  grant(id: bigint, ttlSec: number): Lease {
    if (this.leases.has(id)) throw new ServerError(ServerErrorCode.LeaseExist);
    if (this.leases.size >= LEASES_MAX) throw new ServerError(ServerErrorCode.TooManyRequests);
    const lease = new Lease(id, Math.max(ttlSec, this.minTtlSec));
    if (this.primary) lease.expiryMs = this.now() + lease.ttlSec * 1000;
    this.leases.set(id, lease);
    this.backend.put(Bucket.lease, leaseKey(id), encodeLeaseRecord(id, lease.ttlSec));
    return lease;
  }

  /** Applies a revoke: forgets the lease and returns its keys for the caller to delete. */
  revoke(id: bigint): Uint8Array[] {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new ServerError(ServerErrorCode.LeaseNotFound);
    this.leases.delete(id);
    this.backend.delete(Bucket.lease, leaseKey(id));
    const keys = [...lease.keys].sort().map((k) => Buffer.from(k, 'latin1'));
    for (const k of lease.keys) this.keyLease.delete(k);
    return keys;
  }

  /** Keeps the attached keys current from the store's events. */
  observe(events: readonly MvccEvent[]): void {
    for (const e of events) {
      const k = latin1(e.kv.key);
      const old = this.keyLease.get(k);
      const next = e.type === 'put' ? e.kv.lease : 0n;
      if (old === next) continue;
      if (old !== undefined) {
        this.leases.get(old)?.keys.delete(k);
        this.keyLease.delete(k);
      }
      if (next !== 0n) {
        const lease = this.leases.get(next);
        if (lease !== undefined) {
          lease.keys.add(k);
          this.keyLease.set(k, next);
        }
      }
    }
  }

  /**
   * Leader only: renews a lease; returns its TTL, or 0 when it does not exist or has expired.
   * An expired lease is not renewed even before its revoke applies (etcd waits for the revoke
   * and answers not found): a late keep-alive must not promise a lease that is being revoked.
   */
  renew(id: bigint): number {
    const lease = this.leases.get(id);
    if (lease === undefined) return 0;
    if (this.primary) {
      const now = this.now();
      if (lease.expiryMs !== 0 && lease.expiryMs <= now) return 0;
      lease.expiryMs = now + lease.ttlSec * 1000;
    }
    return lease.ttlSec;
  }

  /** This member leads now: every lease gets a full TTL from now. */
  promote(): void {
    this.primary = true;
    const now = this.now();
    for (const l of this.leases.values()) l.expiryMs = now + l.ttlSec * 1000;
  }

  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiryMs = 0;
  }

  /** Leader only: leases past their expiry, at most `max`. */
  expired(max: number): bigint[] {
    if (!this.primary) return [];
    const now = this.now();
    const out: bigint[] = [];
    for (const l of this.leases.values()) {
      if (l.expiryMs !== 0 && l.expiryMs <= now) {
        out.push(l.id);
        if (out.length >= max) break;
      }
    }
    return out;
  }

  remaining(lease: Lease): number {
    return lease.remainingSec(this.now());
  }
}

function leaseKey(id: bigint): Uint8Array {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64BE(id);
  return b;
}

/**
 * etcd's leasepb.Lease: `ID int64 = 1; TTL int64 = 2; RemainingTTL int64 = 3`, protobuf, so a
 * backend snapshot carries leases in etcd's own format.
 */
export function encodeLeaseRecord(id: bigint, ttlSec: number): Uint8Array {
  const out: number[] = [];
  const varint = (v: bigint) => {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
  };
  out.push(0x08);
  varint(id);
  out.push(0x10);
  varint(BigInt(ttlSec));
  return Uint8Array.from(out);
}

export function decodeLeaseRecord(b: Uint8Array): { id: bigint; ttlSec: number } {
  let pos = 0;
  let id = 0n;
  let ttl = 0n;
  const varint = (): bigint => {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= b.length) throw new Error('lease record truncated');
      const byte = b[pos++]!;
      x |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return x;
      shift += 7n;
    }
  };
  while (pos < b.length) {
    const tag = b[pos++]!;
    const v = varint();
    if (tag === 0x08) id = BigInt.asIntN(64, v);
    else if (tag === 0x10) ttl = v;
  }
  return { id, ttlSec: Number(ttl) };
}
