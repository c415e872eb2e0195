/**
 * The handlers the gRPC server serves, kept where the gateway can call them in-process.
 *
 * etcd's gateway is a gRPC client of its own member; here the gateway calls the very handlers
 * registered on the gRPC server, so both paths answer alike (validation, errors, headers)
 * without a loopback connection. Services register through `table.grpc`, a view of the gRPC
 * server whose `addMethod` also records the handler here, after an optional wrapper (metrics)
 * has wrapped it. Methods registered on the server directly stay out of the gateway's reach.
 */
import type { AnyMethodDescriptor, GrpcServer, MethodOptions } from '../grpc/index.ts';

/** Any handler shape (unary, server, client or bidi streaming). */
export type AnyHandler = (...args: never[]) => unknown;

/** Wraps a handler as it is registered; the wrapped handler is what gRPC and the gateway call. */
export type HandlerWrapper = (desc: AnyMethodDescriptor, handler: AnyHandler) => AnyHandler;

export class MethodTable {
  /** The gRPC server as services see it: `addMethod` registers there and here. */
  readonly grpc: GrpcServer;
  readonly #handlers = new Map<string, AnyHandler>();

  constructor(server: GrpcServer, wrap: HandlerWrapper | null = null) {
    const handlers = this.#handlers;
    const addMethod = (desc: AnyMethodDescriptor, handler: AnyHandler, options?: MethodOptions): GrpcServer => {
      const served = wrap === null ? handler : wrap(desc, handler);
      server.addMethod(desc, served as never, options);
      handlers.set(desc.path, served);
      return view;
    };
    // Everything but addMethod goes to the server itself (its private fields need it as `this`).
    const view: GrpcServer = new Proxy(server, {
      get(target, property) {
        if (property === 'addMethod') return addMethod;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    this.grpc = view;
  }

  /** The handler registered for a method path (`/etcdserverpb.KV/Range`), if any. */
  handler(path: string): AnyHandler | undefined {
    return this.#handlers.get(path);
  }
}
