/**
 * Call deadlines without a timer per call for the common case. Clients usually send long
 * timeouts (etcdctl: 5 s) on every call, and nearly every call completes long before; those
 * go into one set swept by a single shared tick, so a deadline costs a Set insert and delete.
 * Short timeouts, where the tick's granularity would matter, get a native timer.
 */

/** Timeouts at least this long use the shared tick. */
export const COARSE_DEADLINE_MIN_MS = 1000;
/** Sweep period of the shared tick: a long deadline fires at most this late. */
export const COARSE_DEADLINE_TICK_MS = 50;

export interface Expirable {
  /** When it expires, `Date.now()` milliseconds; set before `schedule`. */
  expiresAtMs: number;
  /** The native timer of a short deadline; owned by DeadlineClock. */
  deadlineTimer: NodeJS.Timeout | null;
  /** Called once when the time comes, unless `cancel` came first. */
  onExpired(): void;
}

function fire(target: Expirable): void {
  target.deadlineTimer = null;
  target.onExpired();
}

export class DeadlineClock {
  readonly #coarse = new Set<Expirable>();
  #tick: NodeJS.Timeout | null = null;

  /** Arms `target.expiresAtMs`, which is `timeoutMs` from now. */
  schedule(target: Expirable, timeoutMs: number): void {
    if (timeoutMs < COARSE_DEADLINE_MIN_MS) {
      target.deadlineTimer = setTimeout(fire, Math.max(0, timeoutMs), target);
      target.deadlineTimer.unref();
      return;
    }
    this.#coarse.add(target);
    if (this.#tick === null) {
      this.#tick = setInterval(this.#sweep, COARSE_DEADLINE_TICK_MS);
      this.#tick.unref();
    }
  }

  /** Disarms the deadline of a call that has ended; harmless if it was never armed. */
  cancel(target: Expirable): void {
    if (target.deadlineTimer !== null) {
      clearTimeout(target.deadlineTimer);
      target.deadlineTimer = null;
      return;
    }
    this.#coarse.delete(target);
  }

  /** Deadlines waiting on the shared tick (for tests and metrics). */
  get pendingCoarse(): number {
    return this.#coarse.size;
  }

  readonly #sweep = (): void => {
    const now = Date.now();
    for (const target of this.#coarse) {
      if (target.expiresAtMs <= now) {
        this.#coarse.delete(target);
        target.onExpired();
      }
    }
    if (this.#coarse.size === 0 && this.#tick !== null) {
      clearInterval(this.#tick);
      this.#tick = null;
    }
  };
}
