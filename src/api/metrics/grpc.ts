/**
 * go-grpc-prometheus's server metrics, as etcd registers them: RPCs started and handled (by
 * status code), stream messages received and sent, per method; with `--metrics=extensive`
 * also the handling time. Every series of a method exists from its registration, at zero, as
 * grpc_prometheus pre-registers them, so rates work from the first scrape.
 *
 * Counting happens in a wrapper around each registered handler (see gateway/methods.ts), so
 * calls through the HTTP gateway count as the gRPC calls they are in etcd.
 */

import { GO_CODE_NAMES } from '../../proto/grpc-status.ts';
import {
  Counter,
  type CounterSeries,
  Histogram,
  type HistogramSeries,
  type MetricsRegistry,
} from '../../server/metrics.ts';
import { GrpcError, GrpcStatus, toGrpcError } from '../errors.ts';
import type { AnyHandler } from '../gateway/methods.ts';
import type { AnyMethodDescriptor, ServerCall, ServerWritableCall } from '../grpc/index.ts';
import { splitPath } from '../grpc/index.ts';

/** grpc-go's codes.Code names, indexed by code: the grpc_code label. */
export const GRPC_CODE_NAMES = GO_CODE_NAMES;

/** Prometheus's DefBuckets, which go-grpc-prometheus uses for the handling time. */
export const HANDLING_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

export function grpcTypeOf(desc: AnyMethodDescriptor): GrpcType {
  if (desc.requestStream) return desc.responseStream ? 'bidi_stream' : 'client_stream';
  return desc.responseStream ? 'server_stream' : 'unary';
}

/** The series of one method, resolved once at registration. */
interface MethodSeries {
  readonly started: CounterSeries;
  /** Indexed by gRPC code. */
  readonly handled: readonly CounterSeries[];
  readonly received: CounterSeries;
  readonly sent: CounterSeries;
  readonly seconds: HistogramSeries | null;
}

export class GrpcMetrics {
  readonly started: Counter;
  readonly handled: Counter;
  readonly received: Counter;
  readonly sent: Counter;
  readonly handlingSeconds: Histogram | null;

  constructor(registry: MetricsRegistry, options: { readonly extensive: boolean }) {
    const labelNames = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.started = registry.register(
      new Counter({
        name: 'grpc_server_started_total',
        help: 'Total number of RPCs started on the server.',
        labelNames,
      }),
    );
    this.handled = registry.register(
      new Counter({
        name: 'grpc_server_handled_total',
        help: 'Total number of RPCs completed on the server, regardless of success or failure.',
        labelNames: [...labelNames, 'grpc_code'],
      }),
    );
    this.received = registry.register(
      new Counter({
        name: 'grpc_server_msg_received_total',
        help: 'Total number of RPC stream messages received on the server.',
        labelNames,
      }),
    );
    this.sent = registry.register(
      new Counter({
        name: 'grpc_server_msg_sent_total',
        help: 'Total number of gRPC stream messages sent by the server.',
        labelNames,
      }),
    );
    this.handlingSeconds = options.extensive
      ? registry.register(
          new Histogram({
            name: 'grpc_server_handling_seconds',
            help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
            labelNames,
            buckets: HANDLING_BUCKETS_SECONDS,
          }),
        )
      : null;
  }

  #series(desc: AnyMethodDescriptor): MethodSeries {
    const split = splitPath(desc.path);
    if (split === null) throw new Error(`gRPC method path must look like /package.Service/Method, got ${desc.path}`);
    const labels = [grpcTypeOf(desc), split.service, split.method] as const;
    return {
      started: this.started.labels(...labels),
      handled: GRPC_CODE_NAMES.map((code) => this.handled.labels(...labels, code)),
      received: this.received.labels(...labels),
      sent: this.sent.labels(...labels),
      seconds: this.handlingSeconds?.labels(...labels) ?? null,
    };
  }

  /** The handler wrapper that counts a method's calls (a gateway HandlerWrapper). */
  readonly wrap = (desc: AnyMethodDescriptor, handler: AnyHandler): AnyHandler => {
    const m = this.#series(desc);
    const finish = (startedMs: number, code: number): void => {
      (m.handled[code] ?? m.handled[GrpcStatus.UNKNOWN]!).inc();
      m.seconds?.observe((performance.now() - startedMs) / 1000);
    };
    const failed = (startedMs: number, err: unknown): never => {
      finish(startedMs, err instanceof GrpcError ? err.code : toGrpcError(err).code);
      throw err;
    };
    const run = (startedMs: number, invoke: () => unknown, onOk?: () => void): unknown => {
      let result: unknown;
      try {
        result = invoke();
      } catch (err) {
        return failed(startedMs, err);
      }
      if (result instanceof Promise) {
        return result.then(
          (value: unknown) => {
            onOk?.();
            finish(startedMs, GrpcStatus.OK);
            return value;
          },
          (err: unknown) => failed(startedMs, err),
        );
      }
      onOk?.();
      finish(startedMs, GrpcStatus.OK);
      return result;
    };
    const h = handler as (request: unknown, call: ServerCall) => unknown;
    const countSent = () => m.sent.inc();
    if (!desc.requestStream && !desc.responseStream) {
      return ((request: unknown, call: ServerCall) => {
        m.started.inc();
        m.received.inc();
        return run(performance.now(), () => h(request, call), countSent);
      }) as AnyHandler;
    }
    return ((input: unknown, call: ServerWritableCall<unknown>) => {
      m.started.inc();
      const startedMs = performance.now();
      let request = input;
      if (desc.requestStream) request = countReceived(input as AsyncIterable<unknown>, m.received);
      else m.received.inc();
      const counted = desc.responseStream ? countingCall(call, m.sent) : call;
      return run(startedMs, () => h(request, counted), desc.responseStream ? undefined : countSent);
    }) as AnyHandler;
  };
}

async function* countReceived(requests: AsyncIterable<unknown>, received: CounterSeries): AsyncGenerator<unknown> {
  for await (const request of requests) {
    received.inc();
    yield request;
  }
}

/** The call with its writes counted (the real call keeps its own state: every member delegates). */
function countingCall(call: ServerWritableCall<unknown>, sent: CounterSeries): ServerWritableCall<unknown> {
  const writeFrames = call.writeFrames?.bind(call);
  return {
    get path() {
      return call.path;
    },
    get metadata() {
      return call.metadata;
    },
    get signal() {
      return call.signal;
    },
    get cancelled() {
      return call.cancelled;
    },
    get deadlineMs() {
      return call.deadlineMs;
    },
    write(message: unknown): boolean {
      sent.inc();
      return call.write(message);
    },
    drain(): Promise<void> {
      return call.drain();
    },
    get backlogged() {
      return call.backlogged;
    },
    belowMark: call.belowMark?.bind(call),
    writeFrames:
      writeFrames === undefined
        ? undefined
        : (frames: Uint8Array, count: number): boolean => {
            sent.inc(count);
            return writeFrames(frames, count);
          },
  };
}
