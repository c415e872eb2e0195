// Pending ReadIndex requests on the leader (Raft thesis 6.4). Each request records the commit
// index when it arrived and waits until a quorum acknowledges a heartbeat carrying its context;
// an acknowledgement for a request also confirms every request queued before it, so one
// heartbeat round answers a whole batch.

import { invariant } from './errors.ts';
import type { Message, ReadOnlyOption } from './types.ts';

/** The most read requests that may wait for confirmation at once; more are dropped. */
export const READ_INDEX_PENDING_MAX = 4096;

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<bigint, boolean>;
}

function ctxKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  size(): number {
    return this.queue.length;
  }

  /**
   * Queues a request (its context is m.entries[0].data) read at commit index `index`. A request
   * with the same context as a pending one is a duplicate and is ignored.
   */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.entries[0]!.data);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Map() });
    this.queue.push(key);
  }

  /** Records an acknowledgement of the heartbeat with `context`; returns the acks so far. */
  recvAck(id: bigint, context: Uint8Array): ReadonlyMap<bigint, boolean> | undefined {
    const rs = this.pending.get(ctxKey(context));
    if (rs === undefined) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * The request with `context` is confirmed: dequeue it with every request before it, and
   * return them in arrival order.
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      invariant(rs !== undefined, 'cannot find corresponding read state from pending map');
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** The context of the newest pending request (heartbeats carry it), or undefined. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.req.entries[0]!.data;
  }
}
