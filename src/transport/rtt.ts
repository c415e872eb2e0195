// Round-trip times to one peer, measured with HTTP/2 PING frames on the peer's message
// connection, kept as a Prometheus-style histogram with the buckets of etcd's
// `etcd_network_peer_round_trip_time_seconds` (prometheus.ExponentialBuckets(0.0001, 2, 16):
// 0.1 ms to 3.2768 s).

/** Upper bounds of the histogram buckets, in seconds; a last, implicit bucket is +Inf. */
export const RTT_BUCKETS_SECONDS: readonly number[] = Object.freeze(
  Array.from({ length: 16 }, (_, i) => 0.0001 * 2 ** i),
);

export interface RoundTripStats {
  /** Observations so far. */
  readonly count: number;
  readonly sumSeconds: number;
  /** The latest observation; NaN before the first. */
  readonly lastSeconds: number;
  readonly minSeconds: number;
  readonly maxSeconds: number;
  /**
   * `cumulativeCounts[i]` observations took at most `RTT_BUCKETS_SECONDS[i]` (a Prometheus
   * histogram's `le` buckets; the +Inf bucket is `count`).
   */
  readonly cumulativeCounts: readonly number[];
}

export class RoundTripRecorder {
  readonly #bucketCounts: number[] = new Array<number>(RTT_BUCKETS_SECONDS.length).fill(0);
  #count = 0;
  #sumSeconds = 0;
  #lastSeconds = Number.NaN;
  #minSeconds = Number.NaN;
  #maxSeconds = Number.NaN;

  observe(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.#count++;
    this.#sumSeconds += seconds;
    this.#lastSeconds = seconds;
    this.#minSeconds = this.#count === 1 ? seconds : Math.min(this.#minSeconds, seconds);
    this.#maxSeconds = this.#count === 1 ? seconds : Math.max(this.#maxSeconds, seconds);
    for (let i = 0; i < RTT_BUCKETS_SECONDS.length; i++) {
      if (seconds <= RTT_BUCKETS_SECONDS[i]!) {
        this.#bucketCounts[i]!++;
        break;
      }
    }
  }

  stats(): RoundTripStats {
    const cumulativeCounts: number[] = [];
    let running = 0;
    for (const n of this.#bucketCounts) {
      running += n;
      cumulativeCounts.push(running);
    }
    return {
      count: this.#count,
      sumSeconds: this.#sumSeconds,
      lastSeconds: this.#lastSeconds,
      minSeconds: this.#minSeconds,
      maxSeconds: this.#maxSeconds,
      cumulativeCounts,
    };
  }
}
