/**
 * A member's metrics and health: `/metrics` in the Prometheus text format with etcd's metric
 * names (the server's counters, the member's gauges, gRPC and process metrics), and the checks
 * behind `/health`, `/livez` and `/readyz`.
 */
import { gzipSync } from 'node:zlib';
import { MetricsRegistry } from '../../server/metrics.ts';
import type { HttpResponse, HttpRouter } from '../http.ts';

export { GRPC_CODE_NAMES, GrpcMetrics, grpcTypeOf } from './grpc.ts';
export { EtcdHealth, type HealthSource } from './health.ts';
export { type MemberMetricsSource, registerMemberMetrics } from './member.ts';
export { registerProcessMetrics } from './process.ts';

/** The exposition format's content type, as Go's promhttp sends it. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Serves `registry` at `/metrics` (any method, gzip when the client accepts it, as promhttp). */
export function serveMetrics(router: HttpRouter, registry: MetricsRegistry): void {
  router.route('/metrics', null, (request): HttpResponse => {
    const text = registry.render();
    const accept = String(request.headers['accept-encoding'] ?? '');
    if (/\bgzip\b/.test(accept)) {
      return {
        status: 200,
        headers: { 'content-type': METRICS_CONTENT_TYPE, 'content-encoding': 'gzip' },
        body: gzipSync(text),
      };
    }
    return { status: 200, headers: { 'content-type': METRICS_CONTENT_TYPE }, body: text };
  });
}

export { MetricsRegistry };
