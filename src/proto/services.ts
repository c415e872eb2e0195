// The table of every gRPC method of etcd's v3 API with its codecs, built from the service
// definitions that ts-proto generates from src/proto/**/*.proto. The gRPC server registers
// every path of `allMethods` (answering UNIMPLEMENTED where it has no handler) and a client
// calls them through the same entries.
import { ProtoDecodeError } from './errors.ts';
import {
  AuthDefinition,
  ClusterDefinition,
  KVDefinition,
  LeaseDefinition,
  MaintenanceDefinition,
  WatchDefinition,
} from './gen/etcdserverpb/rpc.ts';
import { HealthDefinition } from './gen/grpc/health/v1/health.ts';
import { ElectionDefinition } from './gen/v3electionpb/v3election.ts';
import { LockDefinition } from './gen/v3lockpb/v3lock.ts';

/** One RPC: its names, its streaming shape and the codecs of both messages. */
export interface Method<Req, Res, ReqStream extends boolean = boolean, ResStream extends boolean = boolean> {
  /** Fully qualified service name, e.g. `etcdserverpb.KV`. */
  readonly service: string;
  /** Method name as in the .proto file, e.g. `Range`. */
  readonly method: string;
  /** HTTP/2 path of the call, `/<service>/<method>`. */
  readonly path: string;
  readonly requestStream: ReqStream;
  readonly responseStream: ResStream;
  /** Throws ProtoDecodeError on bytes that are not a valid request message. */
  decodeRequest(bytes: Uint8Array): Req;
  encodeRequest(message: Req): Uint8Array;
  /** Throws ProtoDecodeError on bytes that are not a valid response message. */
  decodeResponse(bytes: Uint8Array): Res;
  encodeResponse(message: Res): Uint8Array;
}

/** Any method of the table, with its message types erased (dispatch by path). */
export type AnyMethod = Method<unknown, unknown>;

/** The request message type of a method entry. */
export type RequestOf<M> = M extends Method<infer Req, unknown> ? Req : never;
/** The response message type of a method entry. */
export type ResponseOf<M> = M extends Method<unknown, infer Res> ? Res : never;

// The shape of ts-proto's generic service definitions, as far as this table uses it.
interface MessageCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}
interface ErasedCodec {
  encode(message: never): { finish(): Uint8Array };
  decode(input: Uint8Array): unknown;
}
interface MethodDefinition {
  readonly name: string;
  readonly requestType: ErasedCodec;
  readonly requestStream: boolean;
  readonly responseType: ErasedCodec;
  readonly responseStream: boolean;
}
interface ServiceDefinition {
  readonly fullName: string;
  readonly methods: Readonly<Record<string, MethodDefinition>>;
}

type MessageOf<C> = C extends { decode(input: never): infer T } ? T : never;

type MethodOf<D> = D extends MethodDefinition
  ? Method<MessageOf<D['requestType']>, MessageOf<D['responseType']>, D['requestStream'], D['responseStream']>
  : never;

/** The methods of one service keyed by their .proto names: `KVService.Range`, `KVService.Put`... */
export type ServiceMethods<S extends ServiceDefinition> = {
  readonly [K in keyof S['methods'] as S['methods'][K]['name']]: MethodOf<S['methods'][K]>;
};

class RpcMethod<Req, Res> implements Method<Req, Res> {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly #request: MessageCodec<Req>;
  readonly #response: MessageCodec<Res>;

  constructor(service: string, definition: MethodDefinition) {
    this.service = service;
    this.method = definition.name;
    this.path = `/${service}/${definition.name}`;
    this.requestStream = definition.requestStream;
    this.responseStream = definition.responseStream;
    // The definition pairs each method with its own message codecs; Req and Res name them.
    this.#request = definition.requestType as MessageCodec<Req>;
    this.#response = definition.responseType as MessageCodec<Res>;
  }

  decodeRequest(bytes: Uint8Array): Req {
    try {
      return this.#request.decode(bytes);
    } catch (err) {
      throw new ProtoDecodeError(this.path, 'request', err);
    }
  }

  encodeRequest(message: Req): Uint8Array {
    return this.#request.encode(message).finish();
  }

  decodeResponse(bytes: Uint8Array): Res {
    try {
      return this.#response.decode(bytes);
    } catch (err) {
      throw new ProtoDecodeError(this.path, 'response', err);
    }
  }

  encodeResponse(message: Res): Uint8Array {
    return this.#response.encode(message).finish();
  }
}

function serviceMethods<S extends ServiceDefinition>(definition: S): ServiceMethods<S> {
  const methods: Record<string, AnyMethod> = {};
  for (const method of Object.values(definition.methods)) {
    if (method.name in methods) throw new Error(`duplicate method ${definition.fullName}/${method.name}`);
    methods[method.name] = new RpcMethod<unknown, unknown>(definition.fullName, method);
  }
  // The mapped type is exactly what the loop builds: one entry per definition, keyed by name.
  return Object.freeze(methods) as ServiceMethods<S>;
}

export const KVService = serviceMethods(KVDefinition);
export const WatchService = serviceMethods(WatchDefinition);
export const LeaseService = serviceMethods(LeaseDefinition);
export const ClusterService = serviceMethods(ClusterDefinition);
export const MaintenanceService = serviceMethods(MaintenanceDefinition);
export const AuthService = serviceMethods(AuthDefinition);
export const LockService = serviceMethods(LockDefinition);
export const ElectionService = serviceMethods(ElectionDefinition);
/**
 * gRPC's standard health service, which etcd serves beside its API. Not part of `services` or
 * `allMethods` (etcd's own API, which the JSON gateway and the API's tests walk).
 */
export const HealthService = serviceMethods(HealthDefinition);

/** Every service of etcd's gRPC API, keyed by fully qualified name. */
export const services = Object.freeze({
  'etcdserverpb.KV': KVService,
  'etcdserverpb.Watch': WatchService,
  'etcdserverpb.Lease': LeaseService,
  'etcdserverpb.Cluster': ClusterService,
  'etcdserverpb.Maintenance': MaintenanceService,
  'etcdserverpb.Auth': AuthService,
  'v3lockpb.Lock': LockService,
  'v3electionpb.Election': ElectionService,
} as const);

export type ServiceName = keyof typeof services;

/** Every method of every service, in .proto order (48: 41 in etcdserverpb, 2 lock, 5 election). */
export const allMethods: readonly AnyMethod[] = Object.freeze(
  Object.values(services).flatMap((service) => Object.values(service) as AnyMethod[]),
);

/** The HTTP/2 path of every method, e.g. `/etcdserverpb.KV/Range`. */
export const methodPaths: readonly string[] = Object.freeze(allMethods.map((m) => m.path));

const byPath: ReadonlyMap<string, AnyMethod> = new Map(allMethods.map((m) => [m.path, m]));
if (byPath.size !== allMethods.length) throw new Error('two methods share a gRPC path');

/** The method served at an HTTP/2 path, or undefined for a path etcd does not have. */
export function methodByPath(path: string): AnyMethod | undefined {
  return byPath.get(path);
}
