/**
 * The member's health as etcd judges it, for `/health`, `/livez` and `/readyz` (etcd keeps
 * these beside its metrics, in etcdhttp), and the health metrics.
 *
 * `/health`: an alarm that is not excluded fails it (`ALARM NOSPACE`), then no leader
 * (`RAFT NO LEADER`, skipped with `serializable=true`), then a read through the server
 * (linearizable unless `serializable=true`; `RANGE ERROR:<error>`).
 * `/livez` runs `serializable_read`; `/readyz` runs `data_corruption` (no CORRUPT alarm),
 * `serializable_read`, `linearizable_read` and `non_learner`.
 */

import type { RangeResponse } from '../../proto/index.ts';
import { AlarmType, RangeRequest } from '../../proto/index.ts';
import { Counter, Gauge, type MetricsRegistry } from '../../server/metrics.ts';
import type { HealthCheck, HealthQuery, HealthReport } from '../http.ts';

/** What the health checks read of a member (EtcdServer provides it). */
export interface HealthSource {
  hasLeader(): boolean;
  isLearner(): boolean;
  alarmList(): readonly { readonly alarm: number }[];
  range(request: RangeRequest): Promise<RangeResponse>;
}

const ALARM_NAMES: Readonly<Record<number, string>> = {
  [AlarmType.NONE]: 'NONE',
  [AlarmType.NOSPACE]: 'NOSPACE',
  [AlarmType.CORRUPT]: 'CORRUPT',
};

/** The key the read checks read; what it holds does not matter. */
const HEALTH_KEY = Buffer.from('health');

export class EtcdHealth {
  readonly #server: HealthSource;
  readonly #readTimeoutMs: number;
  readonly #success: Counter;
  readonly #failures: Counter;
  readonly #checkGauge: Gauge;
  readonly #checkCounter: Counter;

  /** `readTimeoutMs`: how long a read check waits (etcd's request timeout). */
  constructor(server: HealthSource, registry: MetricsRegistry, readTimeoutMs: number) {
    this.#server = server;
    this.#readTimeoutMs = readTimeoutMs;
    this.#success = registry.register(
      new Counter({ name: 'etcd_server_health_success', help: 'The total number of successful health checks' }),
    );
    this.#failures = registry.register(
      new Counter({ name: 'etcd_server_health_failures', help: 'The total number of failed health checks' }),
    );
    this.#checkGauge = registry.register(
      new Gauge({
        name: 'etcd_server_healthcheck',
        help: 'The result of each kind of healthcheck.',
        labelNames: ['type', 'name'],
      }),
    );
    this.#checkCounter = registry.register(
      new Counter({
        name: 'etcd_server_healthchecks_total',
        help: 'The total number of each kind of healthcheck.',
        labelNames: ['type', 'name', 'status'],
      }),
    );
    this.#success.labels();
    this.#failures.labels();
  }

  /** The member's HealthCheck (`MemberContext.setHealthCheck`). */
  readonly check: HealthCheck = async (query) => {
    if (query.endpoint === 'health') {
      const report = await this.#health(query);
      (report.healthy ? this.#success : this.#failures).inc();
      return report;
    }
    const checks: Record<string, string | null> = {};
    let healthy = true;
    for (const name of query.checks) {
      const error = await this.#named(name);
      checks[name] = error;
      const status = error === null ? 'success' : 'error';
      this.#checkGauge.labels(query.endpoint, name).set(error === null ? 1 : 0);
      this.#checkCounter.labels(query.endpoint, name, status).inc();
      if (error !== null) healthy = false;
    }
    return { healthy, reason: '', checks };
  };

  async #health(query: HealthQuery): Promise<HealthReport> {
    const excluded = new Set(query.exclude);
    for (const { alarm } of this.#server.alarmList()) {
      const name = ALARM_NAMES[alarm] ?? 'UNKNOWN';
      if (excluded.has(name)) continue;
      return { healthy: false, reason: name === 'NONE' ? 'ALARM UNKNOWN' : `ALARM ${name}` };
    }
    if (!query.serializable && !this.#server.hasLeader()) return { healthy: false, reason: 'RAFT NO LEADER' };
    const error = await this.#read(query.serializable);
    if (error !== null) return { healthy: false, reason: `RANGE ERROR:${error}` };
    return { healthy: true, reason: '' };
  }

  /** null when the check passes, else its error. */
  #named(name: string): Promise<string | null> {
    switch (name) {
      case 'data_corruption':
        return Promise.resolve(
          this.#server.alarmList().some((a) => a.alarm === AlarmType.CORRUPT) ? 'alarm activated: CORRUPT' : null,
        );
      case 'serializable_read':
        return this.#read(true);
      case 'linearizable_read':
        return this.#read(false);
      case 'non_learner':
        return Promise.resolve(this.#server.isLearner() ? 'not supported for learner' : null);
      default:
        return Promise.resolve(`unknown health check ${name}`);
    }
  }

  /** A one-key read through the server, as etcd's checks do; null when it succeeds. */
  async #read(serializable: boolean): Promise<string | null> {
    const request = RangeRequest.fromPartial({ key: HEALTH_KEY, limit: 1n, keysOnly: true, serializable });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('etcdserver: request timed out'), this.#readTimeoutMs);
    });
    try {
      return await Promise.race([
        this.#server.range(request).then(
          () => null,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
