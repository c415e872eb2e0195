/**
 * The Auth service (etcdserverpb.Auth), and the auth layer around every handler of the member
 * (etcd's authMaintenanceServer, authClusterServer, isWatchPermitted and lease checks).
 *
 * The layer wraps each handler as it is registered (through the MethodTable, so the JSON
 * gateway's calls pass it too). With auth enabled it resolves the caller once per call: the
 * `token` metadata (or the gateway's `authorization`), else, with --client-cert-auth, the
 * common name of the client's verified certificate; an unknown or expired token fails the call
 * with `invalid auth token`. The handler then runs as that caller, so the member checks its
 * reads, and stamps its proposals for the apply path to check. Some methods are checked here:
 * cluster and maintenance changes need root, a watch needs read access to its range, lease
 * calls need credentials and access to the lease's keys.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { goStatusText } from '../proto/grpc-status.ts';
import {
  AuthService,
  ClusterService,
  HealthService,
  LeaseService,
  MaintenanceService,
  type WatchRequest,
  type WatchResponse,
  WatchService,
} from '../proto/index.ts';
import {
  ANONYMOUS,
  AuthError,
  AuthErrorCode,
  type AuthInfo,
  AuthServer,
  type AuthStore,
  requireCaller,
  runAsCaller,
} from '../server/auth/index.ts';
import type { EtcdServer } from '../server/server.ts';
import { ETCD_ERRORS, type EtcdErrorSpec, GrpcError, GrpcStatus } from './errors.ts';
import type { AnyHandler, HandlerWrapper } from './gateway/index.ts';
import type { AnyMethodDescriptor, GrpcServer, ServerCall, ServerWritableCall } from './grpc/index.ts';

export function registerAuthService(grpc: GrpcServer, server: EtcdServer): void {
  const auth = new AuthServer(server);
  grpc.addMethod(AuthService.AuthEnable, () => auth.authEnable());
  grpc.addMethod(AuthService.AuthDisable, () => auth.authDisable());
  grpc.addMethod(AuthService.AuthStatus, () => auth.authStatus());
  grpc.addMethod(AuthService.Authenticate, (req) => auth.authenticate(req));
  grpc.addMethod(AuthService.UserAdd, (req) => auth.userAdd(req));
  grpc.addMethod(AuthService.UserGet, (req) => auth.userGet(req));
  grpc.addMethod(AuthService.UserList, () => auth.userList());
  grpc.addMethod(AuthService.UserDelete, (req) => auth.userDelete(req));
  grpc.addMethod(AuthService.UserChangePassword, (req) => auth.userChangePassword(req));
  grpc.addMethod(AuthService.UserGrantRole, (req) => auth.userGrantRole(req));
  grpc.addMethod(AuthService.UserRevokeRole, (req) => auth.userRevokeRole(req));
  grpc.addMethod(AuthService.RoleAdd, (req) => auth.roleAdd(req));
  grpc.addMethod(AuthService.RoleGet, (req) => auth.roleGet(req));
  grpc.addMethod(AuthService.RoleList, () => auth.roleList());
  grpc.addMethod(AuthService.RoleDelete, (req) => auth.roleDelete(req));
  grpc.addMethod(AuthService.RoleGrantPermission, (req) => auth.roleGrantPermission(req));
  grpc.addMethod(AuthService.RoleRevokePermission, (req) => auth.roleRevokePermission(req));
}

// ---------------------------------------------------------------------------------------------
// Client certificates

/** The TLS connection of a call's streams, recorded by the listener under client-cert auth. */
const tlsPeers = new WeakMap<object, TLSSocket>();
const commonNames = new WeakMap<TLSSocket, string | undefined>();

/** The listener records the (verified) TLS connection a call's headers arrived on. */
export function recordTlsPeer(headers: IncomingHttpHeaders, socket: TLSSocket): void {
  tlsPeers.set(headers, socket);
}

/** The common name of the verified client certificate a call came with, if any. */
export function tlsCommonName(metadata: IncomingHttpHeaders): string | undefined {
  const socket = tlsPeers.get(metadata);
  if (socket === undefined || !socket.authorized) return undefined;
  if (commonNames.has(socket)) return commonNames.get(socket);
  const subject = socket.getPeerCertificate()?.subject as { CN?: string | string[] } | undefined;
  const cn = Array.isArray(subject?.CN) ? subject.CN[0] : subject?.CN;
  const name = cn === undefined || cn === '' ? undefined : cn;
  commonNames.set(socket, name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// The auth layer

export interface AuthLayerOptions {
  /** --client-cert-auth: a certificate's common name is the user when no token is given. */
  readonly clientCertAuth: boolean;
}

const CHECK = {
  /** Runs as the caller; the member checks what it does. */
  caller: 0,
  /** Answers without looking at credentials (etcd never reads them for these). */
  open: 1,
  /** Cluster membership changes: root only. */
  clusterAdmin: 2,
  /** Maintenance: root only; refusals are UNKNOWN with the auth store's message, as etcd answers. */
  maintenanceAdmin: 3,
  /** LeaseGrant, LeaseRevoke: credentials needed (the revoke is checked again when it applies). */
  credentials: 4,
  leaseTimeToLive: 5,
  leaseLeases: 6,
  leaseKeepAlive: 7,
  watch: 8,
} as const;
type Check = (typeof CHECK)[keyof typeof CHECK];

const CHECKS: ReadonlyMap<string, Check> = new Map<string, Check>([
  [AuthService.Authenticate.path, CHECK.open],
  [ClusterService.MemberList.path, CHECK.open],
  [MaintenanceService.Status.path, CHECK.open],
  // gRPC's health service looks at no token, as etcd's.
  [HealthService.Check.path, CHECK.open],
  [HealthService.Watch.path, CHECK.open],
  [ClusterService.MemberAdd.path, CHECK.clusterAdmin],
  [ClusterService.MemberRemove.path, CHECK.clusterAdmin],
  [ClusterService.MemberUpdate.path, CHECK.clusterAdmin],
  [ClusterService.MemberPromote.path, CHECK.clusterAdmin],
  [MaintenanceService.Defragment.path, CHECK.maintenanceAdmin],
  [MaintenanceService.Snapshot.path, CHECK.maintenanceAdmin],
  [MaintenanceService.Hash.path, CHECK.maintenanceAdmin],
  [MaintenanceService.HashKV.path, CHECK.maintenanceAdmin],
  [MaintenanceService.MoveLeader.path, CHECK.maintenanceAdmin],
  [MaintenanceService.Downgrade.path, CHECK.maintenanceAdmin],
  [LeaseService.LeaseGrant.path, CHECK.credentials],
  [LeaseService.LeaseRevoke.path, CHECK.credentials],
  [LeaseService.LeaseTimeToLive.path, CHECK.leaseTimeToLive],
  [LeaseService.LeaseLeases.path, CHECK.leaseLeases],
  [LeaseService.LeaseKeepAlive.path, CHECK.leaseKeepAlive],
  [WatchService.Watch.path, CHECK.watch],
]);

const EMPTY = new Uint8Array(0);

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Wraps every handler of `server` with the auth layer. A wrapped handler costs nothing more
 * than a flag test while auth is disabled.
 */
export function authLayer(server: EtcdServer, options: AuthLayerOptions): HandlerWrapper {
  const store = server.auth;

  /** etcd's AuthInfoFromCtx, then AuthInfoFromTLS. */
  const callerOf = async (metadata: IncomingHttpHeaders): Promise<AuthInfo> => {
    const token = firstValue(metadata.token) ?? firstValue(metadata.authorization);
    if (token !== undefined) return store.authInfoFromToken(token);
    if (options.clientCertAuth) {
      const cn = tlsCommonName(metadata);
      if (cn !== undefined) return { username: cn, revision: store.revision };
    }
    return ANONYMOUS;
  };

  return (desc: AnyMethodDescriptor, handler: AnyHandler): AnyHandler => {
    const check = CHECKS.get(desc.path) ?? CHECK.caller;
    if (check === CHECK.open) return handler;
    if (check === CHECK.watch) return watchLayer(server, callerOf, handler);
    if (check === CHECK.leaseKeepAlive) return keepAliveLayer(server, callerOf, handler);
    const h = handler as (req: unknown, call: ServerCall) => unknown;
    const guarded = async (req: unknown, call: ServerCall): Promise<unknown> => {
      try {
        const ai = await callerOf(call.metadata);
        return await runAsCaller(ai, () => {
          precheck(server, check, ai, req);
          return h(req, call);
        });
      } catch (err) {
        if (check === CHECK.maintenanceAdmin && err instanceof AuthError) {
          throw new GrpcError(GrpcStatus.UNKNOWN, err.message, { cause: err });
        }
        throw err;
      }
    };
    return ((req: unknown, call: ServerCall) => (store.enabled ? guarded(req, call) : h(req, call))) as AnyHandler;
  };
}

/** The checks made here before the handler runs. */
function precheck(server: EtcdServer, check: Check, ai: AuthInfo, req: unknown): void {
  const store = server.auth;
  switch (check) {
    case CHECK.clusterAdmin:
    case CHECK.maintenanceAdmin:
      store.checkAdmin(ai);
      return;
    case CHECK.credentials:
      requireCaller(store);
      return;
    case CHECK.leaseTimeToLive: {
      requireCaller(store);
      const r = req as { ID: bigint; keys: boolean };
      // Listing the keys of a lease is a read of each of them.
      if (r.keys && !store.isAdmin(ai)) {
        for (const key of server.lessor.get(r.ID)?.keys ?? []) store.checkRange(ai, Buffer.from(key, 'latin1'), EMPTY);
      }
      return;
    }
    case CHECK.leaseLeases:
      requireCaller(store);
      if (!store.isAdmin(ai)) {
        for (const id of server.lessor.ids()) {
          for (const key of server.lessor.get(id)?.keys ?? []) {
            store.checkRange(ai, Buffer.from(key, 'latin1'), EMPTY);
          }
        }
      }
      return;
  }
}

type CallerOf = (metadata: IncomingHttpHeaders) => Promise<AuthInfo>;

/**
 * Watch: each create request needs read access to its whole range. A refused one is answered
 * as etcd answers it (watch id -1, created and canceled, the reason in cancel_reason) and never
 * reaches the watch stream.
 */
function watchLayer(server: EtcdServer, callerOf: CallerOf, handler: AnyHandler): AnyHandler {
  const store = server.auth;
  const h = handler as (requests: AsyncIterable<WatchRequest>, call: ServerWritableCall<WatchResponse>) => unknown;
  return ((requests: AsyncIterable<WatchRequest>, call: ServerWritableCall<WatchResponse>) => {
    async function* permitted(): AsyncGenerator<WatchRequest> {
      for await (const req of requests) {
        const u = req.requestUnion;
        if (u?.$case === 'createRequest' && store.enabled) {
          const reason = await watchRefusal(store, callerOf, call.metadata, u.value.key, u.value.rangeEnd);
          if (reason !== undefined) {
            const refused: WatchResponse = {
              header: server.header(),
              watchId: -1n,
              created: true,
              canceled: true,
              compactRevision: 0n,
              cancelReason: reason,
              fragment: false,
              events: [],
            };
            if (!call.write(refused)) await call.drain();
            continue;
          }
        }
        yield req;
      }
    }
    return h(permitted(), call);
  }) as AnyHandler;
}

/** Why a watch of [key, end) is refused to the call's caller, or undefined when it is allowed. */
async function watchRefusal(
  store: AuthStore,
  callerOf: CallerOf,
  metadata: IncomingHttpHeaders,
  key: Uint8Array,
  end: Uint8Array,
): Promise<string | undefined> {
  try {
    const ai = await callerOf(metadata);
    // The empty key is the smallest key, as the watch itself takes it.
    store.checkRange(ai, key.length === 0 ? Uint8Array.of(0) : key, end);
    return undefined;
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    switch (err.code) {
      case AuthErrorCode.InvalidAuthToken:
        return cancelReason(ETCD_ERRORS.InvalidAuthToken);
      case AuthErrorCode.AuthOldRevision:
        return cancelReason(ETCD_ERRORS.AuthOldRevision);
      case AuthErrorCode.UserEmpty:
        return cancelReason(ETCD_ERRORS.UserEmpty);
      default:
        return cancelReason(ETCD_ERRORS.PermissionDenied);
    }
  }
}

/** A gRPC error as grpc-go's `status.Error(...).Error()` prints it: etcd puts that in cancel_reason. */
function cancelReason(e: EtcdErrorSpec): string {
  return goStatusText(e.code, e.message);
}

/**
 * LeaseKeepAlive: each keep-alive needs credentials and, unless root, write access to every
 * key of the lease (etcd's checkLeaseRenew); a refusal ends the stream with the error.
 */
function keepAliveLayer(server: EtcdServer, callerOf: CallerOf, handler: AnyHandler): AnyHandler {
  const store = server.auth;
  const h = handler as (requests: AsyncIterable<{ ID: bigint }>, call: ServerWritableCall<unknown>) => unknown;
  return ((requests: AsyncIterable<{ ID: bigint }>, call: ServerWritableCall<unknown>) => {
    async function* permitted(): AsyncGenerator<{ ID: bigint }> {
      for await (const req of requests) {
        if (store.enabled) {
          const ai = await callerOf(call.metadata);
          if (ai.username === '') throw new AuthError(AuthErrorCode.UserEmpty);
          const revision = store.revision;
          if (!store.isAdmin(ai)) {
            for (const key of server.lessor.get(req.ID)?.keys ?? []) store.checkPut(ai, Buffer.from(key, 'latin1'));
          }
          if (revision !== store.revision) throw new AuthError(AuthErrorCode.AuthOldRevision);
        }
        yield req;
      }
    }
    return h(permitted(), call);
  }) as AnyHandler;
}
