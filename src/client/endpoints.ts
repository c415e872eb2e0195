/**
 * The client's endpoints: one channel each, and which to use. Calls stick to one endpoint while
 * it works; an endpoint whose connection failed is skipped for `unhealthyMs` and calls move to
 * the next healthy one in order. When every endpoint failed recently, the one that failed
 * longest ago is tried.
 */
import { Channel, type ChannelOptions } from './channel.ts';

export const ENDPOINTS_MAX = 64;

export interface Endpoint {
  readonly index: number;
  /** As given (`127.0.0.1:2379`, `https://host:2379`). */
  readonly address: string;
  readonly channel: Channel;
  /** When its connection last failed (ms since epoch); 0 for never. */
  failedAtMs: number;
}

export class EndpointPool {
  readonly endpoints: readonly Endpoint[];
  private readonly unhealthyMs: number;
  private preferred = 0;

  constructor(addresses: readonly string[], channelOptions: ChannelOptions, unhealthyMs: number) {
    if (addresses.length === 0) throw new TypeError('at least one endpoint is needed');
    if (addresses.length > ENDPOINTS_MAX) throw new RangeError(`at most ${ENDPOINTS_MAX} endpoints`);
    this.endpoints = addresses.map((address, index) => ({
      index,
      address,
      channel: new Channel(address, channelOptions),
      failedAtMs: 0,
    }));
    this.unhealthyMs = unhealthyMs;
  }

  /** The endpoint given as `address`, if it is one of the pool's. */
  find(address: string): Endpoint | undefined {
    const bare = stripScheme(address);
    return this.endpoints.find((e) => e.address === address || stripScheme(e.address) === bare);
  }

  /**
   * The endpoint to use next, not one of `exclude` (endpoints already tried by this call)
   * unless there is no other.
   */
  pick(exclude: ReadonlySet<number> = new Set()): Endpoint {
    const nowMs = Date.now();
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.preferred + i) % n]!;
      if (!exclude.has(e.index) && nowMs - e.failedAtMs >= this.unhealthyMs) return e;
    }
    let best: Endpoint | undefined;
    for (const e of this.endpoints) {
      if (exclude.has(e.index) && exclude.size < n) continue;
      if (best === undefined || e.failedAtMs < best.failedAtMs) best = e;
    }
    return best ?? this.endpoints[this.preferred]!;
  }

  /** A call on `e` got an answer from the server. */
  succeeded(e: Endpoint): void {
    e.failedAtMs = 0;
    this.preferred = e.index;
  }

  /** `e`'s connection failed: skip it for a while and prefer the next one. */
  failed(e: Endpoint): void {
    e.failedAtMs = Date.now();
    if (this.preferred === e.index) this.preferred = (e.index + 1) % this.endpoints.length;
  }

  close(): void {
    for (const e of this.endpoints) e.channel.close();
  }
}

function stripScheme(address: string): string {
  return address.replace(/^[a-z]+:\/\//, '');
}
