/**
 * Calls that require a leader. A client that sends the metadata `hasleader: true` (clientv3's
 * WithRequireLeader, which Kubernetes' watches, `etcdctl watch` and clientv3's keep-alive
 * streams use; our client's watches and keep-alives too) wants answers only from a member that
 * is part of a working cluster, so that a member cut off from its leader sends the client on to
 * another endpoint instead of serving it a stale view.
 *
 * As etcd does: such a call, unary or streaming, made while the member knows no leader is
 * refused at once with `etcdserver: no leader` (UNAVAILABLE). A stream opened while there was a
 * leader is ended with the same status once the member has found no leader at
 * NO_LEADER_CHECKS_BEFORE_CANCEL checks in a row, one every election timeout: a stream costs
 * more to open again than a refused request, so a short election does not end it.
 *
 * The layer sits outside the metrics (etcd's check comes before its gRPC metrics) and inside the
 * learner's layer (etcd checks for a learner first).
 */
import { REQUIRE_LEADER_METADATA } from '../proto/index.ts';
import { etcdError } from './errors.ts';
import type { AnyHandler, HandlerWrapper } from './gateway/index.ts';
import type { AnyMethodDescriptor, ServerCall } from './grpc/index.ts';

/** Checks without a leader, one per election timeout, before the streams that require one end. */
export const NO_LEADER_CHECKS_BEFORE_CANCEL = 3;

/** Whether the member knows a leader (itself or another member). */
export interface LeaderState {
  hasLeader(): boolean;
}

function requiresLeader(call: ServerCall | undefined): boolean {
  return call?.metadata?.hasleader === REQUIRE_LEADER_METADATA.hasleader;
}

export class RequireLeader {
  readonly #member: LeaderState;
  readonly #timer: NodeJS.Timeout;
  #checksWithoutLeader = 0;
  /** How to end each open stream that requires a leader. */
  readonly #streams = new Set<(reason: Error) => void>();

  constructor(member: LeaderState, electionMs: number) {
    this.#member = member;
    this.#timer = setInterval(() => this.check(), electionMs);
    this.#timer.unref();
  }

  /** The open streams that require a leader (for tests). */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** One periodic check (run every election timeout; public for tests). */
  check(): void {
    if (this.#member.hasLeader()) {
      this.#checksWithoutLeader = 0;
      return;
    }
    this.#checksWithoutLeader++;
    if (this.#checksWithoutLeader < NO_LEADER_CHECKS_BEFORE_CANCEL) return;
    const ends = [...this.#streams];
    this.#streams.clear();
    for (const end of ends) end(etcdError('NoLeader'));
  }

  close(): void {
    clearInterval(this.#timer);
  }

  readonly layer: HandlerWrapper = (desc: AnyMethodDescriptor, handler: AnyHandler): AnyHandler => {
    const h = handler as (first: unknown, call: ServerCall) => unknown;
    if (!desc.requestStream && !desc.responseStream) {
      return ((req: unknown, call: ServerCall) => {
        if (requiresLeader(call) && !this.#member.hasLeader()) throw etcdError('NoLeader');
        return h(req, call);
      }) as AnyHandler;
    }
    return ((first: unknown, call: ServerCall) => {
      if (!requiresLeader(call)) return h(first, call);
      if (!this.#member.hasLeader()) throw etcdError('NoLeader');
      return this.#watched(() => h(first, call));
    }) as AnyHandler;
  };

  /**
   * Runs a stream's handler so that the periodic check can end it: the call ends with the
   * check's error (its reads then fail and its signal aborts, which stops the handler).
   */
  #watched(run: () => unknown): Promise<unknown> {
    let end!: (reason: Error) => void;
    const ended = new Promise<never>((_, reject) => {
      end = reject;
    });
    this.#streams.add(end);
    let out: unknown;
    try {
      out = run();
    } catch (err) {
      this.#streams.delete(end);
      throw err;
    }
    return Promise.race([Promise.resolve(out), ended]).finally(() => this.#streams.delete(end));
  }
}
