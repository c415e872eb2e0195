/**
 * Service registration and discovery.
 *
 * A registration is the key `<prefix>/<service>/<instanceId>` bound to a kept-alive lease: it
 * disappears when its process dies (once the TTL runs out) and is put again under a new lease
 * if the lease is lost while the process lives (a long partition, an expired lease). `close()`
 * revokes the lease, so the instance disappears at once.
 *
 * A discovery reads every instance under `<prefix>/<service>/` and then watches the prefix from
 * the revision after that read, so it misses no change; after a compaction of the history it
 * missed, it reads again and reports the difference.
 */
import { EventEmitter } from 'node:events';
import { type Bytes, toBuffer } from './bytes.ts';
import { Status } from './channel.ts';
import type { Client } from './client.ts';
import { sleep } from './core.ts';
import { CompactedError, EtcdError, type LeaseLostError } from './errors.ts';
import type { KeyValue } from './kv.ts';
import type { Lease } from './lease.ts';
import type { Watcher } from './watch.ts';

export const SERVICE_PREFIX_DEFAULT = '/services';
export const REGISTRATION_TTL_DEFAULT_S = 10;
/** Instances one discovery tracks. */
export const DISCOVERED_INSTANCES_MAX = 100_000;
const REREGISTER_BACKOFF_MS_BASE = 100;
const REREGISTER_BACKOFF_MS_MAX = 5_000;

export interface RegisterOptions {
  /** Key prefix of every service (default `/services`). */
  prefix?: string;
  /** Lease TTL in seconds: how long after the process dies the instance disappears (default 10). */
  ttl?: number;
}

export interface DiscoveryOptions {
  prefix?: string;
}

/** One registered instance of a service as discovered. */
export interface Instance {
  /** The instance id (the last part of the key). */
  id: string;
  key: string;
  value: Buffer;
  lease: bigint;
  modRevision: bigint;
}

function checkName(what: string, name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${what} must be a non-empty string`);
  if (name.includes('/')) throw new TypeError(`${what} must not contain "/": ${JSON.stringify(name)}`);
}

export function serviceKeyPrefix(prefix: string, service: string): string {
  checkName('service', service);
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return `${p}/${service}/`;
}

/**
 * A registered instance. Events: 'lost' (LeaseLostError: the instance is gone until it is
 * registered again), 'registered' (bigint lease id: put, first or again), 'error' (a failed
 * re-registration attempt; it keeps trying).
 */
export class Registration extends EventEmitter {
  readonly service: string;
  readonly instanceId: string;
  readonly key: string;
  private readonly client: Client;
  private readonly ttl: number;
  private value: Buffer;
  private current: Lease | undefined = undefined;
  private closed = false;
  private recovering: Promise<void> | undefined = undefined;

  private constructor(client: Client, service: string, instanceId: string, value: Buffer, options: RegisterOptions) {
    super();
    this.client = client;
    this.service = service;
    this.instanceId = instanceId;
    this.key = serviceKeyPrefix(options.prefix ?? SERVICE_PREFIX_DEFAULT, service) + instanceId;
    this.value = value;
    this.ttl = options.ttl ?? REGISTRATION_TTL_DEFAULT_S;
    if (!Number.isSafeInteger(this.ttl) || this.ttl < 1) throw new RangeError('ttl must be a positive integer');
  }

  /** @internal */
  static async start(
    client: Client,
    service: string,
    instanceId: string,
    value: Bytes,
    options: RegisterOptions,
  ): Promise<Registration> {
    checkName('instanceId', instanceId);
    const r = new Registration(client, service, instanceId, Buffer.from(toBuffer(value)), options);
    await r.registerOnce();
    return r;
  }

  /** The lease the instance is registered with now. */
  get leaseId(): bigint | undefined {
    return this.current?.id;
  }

  /** Changes the instance's value (same lease). */
  async update(value: Bytes): Promise<void> {
    this.value = Buffer.from(toBuffer(value));
    const lease = this.current;
    if (lease !== undefined && !lease.closed) await this.client.put(this.key, this.value, { lease: lease.id });
  }

  /** Deregisters: the lease is revoked and the key deleted. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const lease = this.current;
    this.current = undefined;
    if (lease !== undefined) await lease.revoke();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async registerOnce(): Promise<void> {
    const lease = await this.client.lease(this.ttl);
    try {
      await this.client.put(this.key, this.value, { lease: lease.id });
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await lease.revoke().catch(() => {});
      return;
    }
    this.current = lease;
    lease.once('lost', (error: LeaseLostError) => this.onLost(lease, error));
    this.emit('registered', lease.id);
  }

  private onLost(lease: Lease, error: LeaseLostError): void {
    if (this.closed || this.current !== lease) return;
    this.current = undefined;
    this.emit('lost', error);
    this.recovering ??= this.reregister().finally(() => {
      this.recovering = undefined;
    });
  }

  private async reregister(): Promise<void> {
    for (let attempt = 0; !this.closed && !this.client.closed; attempt++) {
      try {
        await this.registerOnce();
        return;
      } catch (err) {
        if (this.listenerCount('error') > 0) this.emit('error', err);
        const delayMs = Math.min(REREGISTER_BACKOFF_MS_MAX, REREGISTER_BACKOFF_MS_BASE * 2 ** Math.min(attempt, 8));
        await sleep(delayMs, this.client.closeSignal);
      }
    }
  }
}

/**
 * The live instances of a service. Events: 'added' (Instance), 'removed' (Instance, the last
 * known state), 'updated' (Instance, previous Instance), 'change' (the sorted list after any of
 * these), 'error' (EtcdError; the discovery then stops).
 */
export class Discovery extends EventEmitter {
  readonly service: string;
  readonly keyPrefix: string;
  private readonly client: Client;
  private readonly byId = new Map<string, Instance>();
  private sorted: Instance[] = [];
  private watcher: Watcher | undefined = undefined;
  private closed = false;
  private cursor = 0;

  private constructor(client: Client, service: string, options: DiscoveryOptions) {
    super();
    this.client = client;
    this.service = service;
    this.keyPrefix = serviceKeyPrefix(options.prefix ?? SERVICE_PREFIX_DEFAULT, service);
  }

  /** @internal */
  static async start(client: Client, service: string, options: DiscoveryOptions): Promise<Discovery> {
    const d = new Discovery(client, service, options);
    await d.load();
    return d;
  }

  /** The instances, sorted by id (a stable order for load balancing). */
  instances(): readonly Instance[] {
    return this.sorted;
  }

  get(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** The next instance in round-robin order; undefined when there is none. */
  next(): Instance | undefined {
    if (this.sorted.length === 0) return undefined;
    const instance = this.sorted[this.cursor % this.sorted.length]!;
    this.cursor = (this.cursor + 1) % this.sorted.length;
    return instance;
  }

  /** Resolves when `predicate(instances)` holds (checked now and after every change). */
  waitFor(
    predicate: (instances: readonly Instance[]) => boolean,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    if (predicate(this.sorted)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onChange = (list: readonly Instance[]) => {
        if (!predicate(list)) return;
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(options.signal?.reason);
      };
      const cleanup = () => {
        this.off('change', onChange);
        options.signal?.removeEventListener('abort', onAbort);
      };
      this.on('change', onChange);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
    this.watcher = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Reads every instance, reports the difference with what was known, and watches from there. */
  private async load(): Promise<void> {
    const r = await this.client.get(this.keyPrefix, { prefix: true });
    if (this.closed) return;
    const seen = new Set<string>();
    let changed = false;
    for (const kv of r.kvs) {
      const instance = this.instanceOf(kv);
      if (instance === undefined) continue;
      seen.add(instance.id);
      changed = this.apply(instance) || changed;
    }
    for (const [id, instance] of [...this.byId]) {
      if (seen.has(id)) continue;
      this.byId.delete(id);
      this.emit('removed', instance);
      changed = true;
    }
    if (changed) this.publish();
    const watcher = this.client.watch(
      this.keyPrefix,
      { prefix: true, startRevision: r.header.revision + 1n },
      (batch) => {
        let any = false;
        for (const event of batch.events) {
          if (event.type === 'put') {
            const instance = this.instanceOf(event.kv);
            if (instance !== undefined) any = this.apply(instance) || any;
          } else {
            const id = this.idOf(event.kv.key);
            const known = id === undefined ? undefined : this.byId.get(id);
            if (known !== undefined) {
              this.byId.delete(known.id);
              this.emit('removed', known);
              any = true;
            }
          }
        }
        if (any) this.publish();
      },
    );
    watcher.on('error', (err: EtcdError) => {
      if (this.closed) return;
      if (err instanceof CompactedError) {
        this.watcher = undefined;
        this.load().catch((e: unknown) => this.fail(e));
        return;
      }
      this.fail(err);
    });
    this.watcher = watcher;
    await watcher.ready();
  }

  private fail(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Adds or updates an instance; true if anything changed. */
  private apply(instance: Instance): boolean {
    const known = this.byId.get(instance.id);
    if (known === undefined) {
      if (this.byId.size >= DISCOVERED_INSTANCES_MAX) {
        this.fail(
          new EtcdError(
            'ETCD_DISCOVERY_FULL',
            Status.RESOURCE_EXHAUSTED,
            `more than ${DISCOVERED_INSTANCES_MAX} instances`,
          ),
        );
        return false;
      }
      this.byId.set(instance.id, instance);
      this.emit('added', instance);
      return true;
    }
    if (known.modRevision === instance.modRevision) return false;
    this.byId.set(instance.id, instance);
    this.emit('updated', instance, known);
    return true;
  }

  private publish(): void {
    this.sorted = [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.emit('change', this.sorted);
  }

  private idOf(key: Buffer): string | undefined {
    const text = key.toString('utf8');
    if (!text.startsWith(this.keyPrefix)) return undefined;
    const id = text.slice(this.keyPrefix.length);
    return id.length === 0 || id.includes('/') ? undefined : id;
  }

  private instanceOf(kv: KeyValue): Instance | undefined {
    const id = this.idOf(kv.key);
    if (id === undefined) return undefined;
    return { id, key: kv.key.toString('utf8'), value: kv.value, lease: kv.lease, modRevision: kv.modRevision };
  }
}
