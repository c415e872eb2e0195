/**
 * Leases kept alive in the background. Every kept-alive lease of a client shares one
 * LeaseKeepAlive stream; each lease is renewed every third of its TTL. A lease is lost when the
 * server answers a renewal with TTL 0 (it expired or was revoked) or when no renewal succeeded
 * before its TTL ran out (the client could not reach a server in time). A lost lease emits
 * 'lost' once and stops; the keys attached to it are gone (or will be when the server notices).
 */
import { EventEmitter } from 'node:events';
import {
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  LeaseService,
  REQUIRE_LEADER_METADATA,
} from '../proto/index.ts';
import { type GrpcCallError, Status } from './channel.ts';
import type { ClientCore } from './core.ts';
import type { Endpoint } from './endpoints.ts';
import { ClientClosedError, DeadlineExceededError, LeaseLostError } from './errors.ts';

/** Check the leases this often (renewals are due every TTL/3). */
const TICK_MS = 250;
const RECONNECT_BACKOFF_MS_BASE = 50;
const RECONNECT_BACKOFF_MS_MAX = 1_000;
/** Renew no more often than this, whatever the TTL. */
const RENEW_INTERVAL_MS_MIN = 500;
/** Kept-alive leases of one client. */
export const KEPT_LEASES_MAX = 10_000;

/** What the server said to one keep-alive. */
export interface KeepAliveResult {
  id: bigint;
  /** Seconds left after the renewal; 0 when the lease is gone. */
  ttl: number;
}

/** The part of a client a lease needs besides the keep-alive stream. */
export interface LeaseOwner {
  revoke(id: bigint): Promise<unknown>;
  timeToLive(id: bigint, options?: { keys?: boolean }): Promise<LeaseInfo>;
}

export interface LeaseInfo {
  id: bigint;
  /** Seconds left; -1 when the lease does not exist (expired or revoked). */
  ttl: number;
  /** The TTL it was granted with; 0 when it does not exist. */
  grantedTtl: number;
  /** Keys attached (asked with `keys: true`). */
  keys: Buffer[];
}

/**
 * A lease renewed in the background until `close()` (keys then expire after the TTL) or
 * `revoke()` (keys go at once). Events: 'keepalive' (KeepAliveResult), 'lost' (LeaseLostError).
 */
export class Lease extends EventEmitter {
  readonly id: bigint;
  /** The TTL granted, in seconds. */
  readonly ttl: number;
  private readonly keeper: LeaseKeeper;
  private readonly owner: LeaseOwner;
  /** @internal When the next renewal is due (ms since epoch). */
  renewAtMs: number;
  /** @internal Until when the lease is known to live (ms since epoch). */
  expiresAtMs: number;
  /** @internal A renewal was sent and not answered yet. */
  inFlight = false;
  private state: 'alive' | 'lost' | 'closed' = 'alive';
  private lostError: LeaseLostError | undefined = undefined;

  /** @internal */
  constructor(keeper: LeaseKeeper, owner: LeaseOwner, id: bigint, ttl: number) {
    super();
    this.keeper = keeper;
    this.owner = owner;
    this.id = id;
    this.ttl = ttl;
    const nowMs = Date.now();
    this.expiresAtMs = nowMs + ttl * 1000;
    this.renewAtMs = nowMs + renewIntervalMs(ttl);
  }

  /** The lease expired or was revoked (or could not be renewed in time). */
  get lost(): boolean {
    return this.state === 'lost';
  }

  get closed(): boolean {
    return this.state !== 'alive';
  }

  /** Resolves with the loss error when the lease is lost; never resolves if it is closed first. */
  whenLost(): Promise<LeaseLostError> {
    if (this.lostError !== undefined) return Promise.resolve(this.lostError);
    return new Promise((resolve) => this.once('lost', resolve));
  }

  /** @internal */
  renewed(ttl: number): void {
    if (this.state !== 'alive') return;
    if (ttl <= 0) {
      this.markLost(`lease ${hex(this.id)} expired or was revoked`);
      return;
    }
    const nowMs = Date.now();
    this.expiresAtMs = nowMs + ttl * 1000;
    this.renewAtMs = nowMs + renewIntervalMs(ttl);
    this.emit('keepalive', { id: this.id, ttl } satisfies KeepAliveResult);
  }

  /** @internal */
  markLost(details: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.keeper.remove(this);
    this.lostError = new LeaseLostError(this.id, details);
    this.emit('lost', this.lostError);
  }

  timeToLive(options?: { keys?: boolean }): Promise<LeaseInfo> {
    return this.owner.timeToLive(this.id, options);
  }

  /** Stops renewing; the lease and its keys expire after the TTL. */
  close(): void {
    if (this.state !== 'alive') return;
    this.state = 'closed';
    this.keeper.remove(this);
  }

  /** Stops renewing and revokes the lease: its keys are deleted now. */
  async revoke(): Promise<void> {
    const wasLost = this.state === 'lost';
    this.close();
    if (!wasLost) await this.owner.revoke(this.id);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

function renewIntervalMs(ttl: number): number {
  return Math.max(RENEW_INTERVAL_MS_MIN, Math.floor((ttl * 1000) / 3));
}

function hex(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16).padStart(16, '0');
}

/** The keep-alive stream of a client and the leases it renews. */
export class LeaseKeeper {
  private readonly core: ClientCore;
  private readonly leases = new Map<bigint, Lease[]>();
  private stream: { write(r: LeaseKeepAliveRequest): boolean; cancel(): void } | undefined = undefined;
  private endpoint: Endpoint | undefined = undefined;
  private opening = false;
  private ticker: NodeJS.Timeout | undefined = undefined;
  private retryAtMs = 0;
  private failures = 0;
  private generation = 0;
  /** One-off keep-alives waiting for their answer, by lease id. */
  private readonly onceWaiters = new Map<bigint, Array<(r: KeepAliveResult) => void>>();

  constructor(core: ClientCore) {
    this.core = core;
  }

  add(lease: Lease): void {
    if (this.core.closed) throw new ClientClosedError();
    if (this.size() >= KEPT_LEASES_MAX) throw new RangeError(`at most ${KEPT_LEASES_MAX} kept-alive leases`);
    const list = this.leases.get(lease.id);
    if (list === undefined) this.leases.set(lease.id, [lease]);
    else list.push(lease);
    this.ticker ??= setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  remove(lease: Lease): void {
    const list = this.leases.get(lease.id);
    if (list === undefined) return;
    const rest = list.filter((l) => l !== lease);
    if (rest.length === 0) this.leases.delete(lease.id);
    else this.leases.set(lease.id, rest);
    this.stopIfIdle();
  }

  /** One renewal over the shared stream, outside the background schedule. */
  keepAliveOnce(id: bigint, timeoutMs: number): Promise<KeepAliveResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.onceWaiters.get(id);
        if (list !== undefined) {
          const rest = list.filter((w) => w !== waiter);
          if (rest.length === 0) this.onceWaiters.delete(id);
          else this.onceWaiters.set(id, rest);
        }
        this.stopIfIdle();
        reject(
          new DeadlineExceededError(Status.DEADLINE_EXCEEDED, 'keep-alive not answered in time', {
            message: 'context deadline exceeded',
          }),
        );
      }, timeoutMs);
      const waiter = (r: KeepAliveResult) => {
        clearTimeout(timer);
        resolve(r);
      };
      const list = this.onceWaiters.get(id);
      if (list === undefined) this.onceWaiters.set(id, [waiter]);
      else list.push(waiter);
      this.ticker ??= setInterval(() => this.tick(), TICK_MS);
      if (this.stream !== undefined) this.stream.write({ ID: id });
      else this.open();
    });
  }

  closeAll(): void {
    for (const list of [...this.leases.values()]) for (const lease of list) lease.close();
    this.leases.clear();
    this.onceWaiters.clear();
    this.stop();
  }

  private size(): number {
    let n = 0;
    for (const list of this.leases.values()) n += list.length;
    return n;
  }

  private stopIfIdle(): void {
    if (this.leases.size === 0 && this.onceWaiters.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.generation++;
    const stream = this.stream;
    this.stream = undefined;
    this.endpoint = undefined;
    stream?.cancel();
  }

  private tick(): void {
    if (this.core.closed) {
      this.closeAll();
      return;
    }
    const nowMs = Date.now();
    for (const list of [...this.leases.values()]) {
      for (const lease of list) {
        if (nowMs >= lease.expiresAtMs) lease.markLost(`lease ${hex(lease.id)} could not be renewed before it expired`);
      }
    }
    if (this.stream === undefined) {
      if (nowMs >= this.retryAtMs) this.open();
      return;
    }
    for (const [id, list] of this.leases) {
      const first = list[0]!;
      if (nowMs >= first.renewAtMs && !first.inFlight) {
        for (const lease of list) lease.inFlight = true;
        this.stream.write({ ID: id });
      }
    }
  }

  private open(): void {
    if (this.opening || this.stream !== undefined || this.core.closed) return;
    if (this.leases.size === 0 && this.onceWaiters.size === 0) return;
    this.opening = true;
    const generation = ++this.generation;
    this.core
      .openStream(
        LeaseService.LeaseKeepAlive,
        {
          onMessage: (response) => {
            if (generation === this.generation) this.onResponse(response);
          },
          onClose: (error) => {
            if (generation === this.generation) this.onStreamClosed(error);
          },
        },
        // A member cut off from its leader cannot renew: have it drop the stream so renewals
        // move to another member (etcd's WithRequireLeader).
        REQUIRE_LEADER_METADATA,
      )
      .then(
        (opened) => {
          this.opening = false;
          if (generation !== this.generation) {
            opened.stream.cancel();
            return;
          }
          this.stream = opened.stream;
          this.endpoint = opened.endpoint;
          // Renew everything now: renewals sent on the old stream may never be answered.
          for (const list of this.leases.values()) {
            for (const lease of list) {
              lease.inFlight = false;
              lease.renewAtMs = 0;
            }
          }
          for (const id of this.onceWaiters.keys()) opened.stream.write({ ID: id });
          this.tick();
        },
        (err: unknown) => {
          this.opening = false;
          if (generation !== this.generation) return;
          if (err instanceof ClientClosedError || this.core.closed) {
            this.closeAll();
            return;
          }
          this.backoff();
        },
      );
  }

  private onResponse(response: LeaseKeepAliveResponse): void {
    if (this.endpoint !== undefined) this.core.streamSucceeded(this.endpoint);
    this.failures = 0;
    const result: KeepAliveResult = { id: response.ID, ttl: Number(response.TTL) };
    const waiters = this.onceWaiters.get(response.ID);
    if (waiters !== undefined) {
      this.onceWaiters.delete(response.ID);
      for (const w of waiters) w(result);
    }
    const list = this.leases.get(response.ID);
    if (list !== undefined) {
      for (const lease of [...list]) {
        lease.inFlight = false;
        lease.renewed(result.ttl);
      }
    }
    this.stopIfIdle();
  }

  private onStreamClosed(error: GrpcCallError | undefined): void {
    const endpoint = this.endpoint;
    this.stream = undefined;
    this.endpoint = undefined;
    this.generation++;
    if (this.core.closed) {
      this.closeAll();
      return;
    }
    if (error !== undefined && endpoint !== undefined) this.core.streamFailed(endpoint, error);
    if (error?.code === Status.UNIMPLEMENTED) {
      for (const list of [...this.leases.values()]) {
        for (const lease of list) lease.markLost(`keep-alive not served: ${error.details}`);
      }
      return;
    }
    this.backoff();
  }

  private backoff(): void {
    const delayMs = Math.min(RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_BASE * 2 ** Math.min(this.failures, 8));
    this.failures++;
    this.retryAtMs = Date.now() + delayMs;
  }
}
