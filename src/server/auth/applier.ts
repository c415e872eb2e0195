/**
 * The auth layer of the apply path (etcd's authApplierV3): it wraps the member's base applier.
 * Each entry carries who proposed it (the caller header); before the base applier runs a
 * request, the layer checks that caller's permissions against the auth store as it is at this
 * point of the log, so every member decides alike. Auth requests themselves (users, roles,
 * enable, authenticate) are applied here, to the auth store.
 *
 * Entries without a caller header are the member's own (lease expiry, automatic compaction)
 * and pass unchecked, as etcd runs those with root's credentials.
 */
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  AuthRoleAddRequest,
  AuthRoleDeleteRequest,
  AuthRoleGrantPermissionRequest,
  AuthRoleRevokePermissionRequest,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserDeleteRequest,
  AuthUserGrantRoleRequest,
  AuthUserRevokeRoleRequest,
  type DeleteRangeRequest,
  DeleteRangeRequest as DeleteRangeRequestCodec,
  type LeaseRevokeRequest,
  LeaseRevokeRequest as LeaseRevokeRequestCodec,
  type PutRequest,
  PutRequest as PutRequestCodec,
  type ResponseHeader,
  type TxnRequest,
  TxnRequest as TxnRequestCodec,
} from '../../proto/index.ts';
import { type RequestCaller, RequestKind } from '../raft-request.ts';
import { checkDeleteRangeAuth, checkLeasePuts, checkPutAuth, checkTxnAuth, type LeaseKeys } from './checks.ts';
import type { AuthStore } from './store.ts';

/** The raft kinds applied to the auth store. */
export const AUTH_KINDS: ReadonlySet<number> = new Set([
  RequestKind.Authenticate,
  RequestKind.AuthEnable,
  RequestKind.AuthDisable,
  RequestKind.AuthUserAdd,
  RequestKind.AuthUserDelete,
  RequestKind.AuthUserChangePassword,
  RequestKind.AuthUserGrantRole,
  RequestKind.AuthUserRevokeRole,
  RequestKind.AuthRoleAdd,
  RequestKind.AuthRoleDelete,
  RequestKind.AuthRoleGrantPermission,
  RequestKind.AuthRoleRevokePermission,
]);

/**
 * etcd's needAdminPermission (every auth change but Authenticate), plus compaction: it drops
 * the history of every key, which only root may decide.
 */
const ADMIN_KINDS: ReadonlySet<number> = new Set([
  ...[...AUTH_KINDS].filter((k) => k !== RequestKind.Authenticate),
  RequestKind.Compaction,
]);

/** What the layer needs of the member. */
export interface AuthApplierEnv {
  /** The keys attached to a lease (latin1), undefined when there is no such lease. */
  readonly leaseKeys: LeaseKeys;
  /** A response header at the current revision. */
  header(): ResponseHeader;
}

export interface AuthApplyInput {
  readonly kind: number;
  readonly caller: RequestCaller | undefined;
  /** The entry's raft index (simple tokens are named after it). */
  readonly index: number;
  /** The request as this member decoded it when it proposed it; undefined otherwise. */
  readonly local: unknown;
  /** This member proposed the entry (its client waits for the answer). */
  readonly proposedHere: boolean;
  readonly payload: Uint8Array;
}

export class AuthApplier {
  private readonly store: AuthStore;
  private readonly env: AuthApplierEnv;

  constructor(store: AuthStore, env: AuthApplierEnv) {
    this.store = store;
    this.env = env;
  }

  /**
   * Applies one entry: auth requests here; any other after the caller's permissions are
   * checked, by `base` (given the decoded request when this layer had to decode it).
   */
  apply(input: AuthApplyInput, base: (request: unknown) => unknown): unknown {
    const { kind, caller } = input;
    this.store.tokens.observeIndex(input.index);
    if (caller !== undefined && ADMIN_KINDS.has(kind)) this.store.checkAdmin(caller);
    if (AUTH_KINDS.has(kind)) return this.applyAuth(input);
    if (caller === undefined || !this.store.enabled) return base(input.local);
    const leaseKeys = this.env.leaseKeys;
    switch (kind) {
      case RequestKind.Put: {
        const req = (input.local as PutRequest | undefined) ?? PutRequestCodec.decode(input.payload);
        checkPutAuth(this.store, caller, req, leaseKeys);
        return base(req);
      }
      case RequestKind.DeleteRange: {
        const req = (input.local as DeleteRangeRequest | undefined) ?? DeleteRangeRequestCodec.decode(input.payload);
        checkDeleteRangeAuth(this.store, caller, req);
        return base(req);
      }
      case RequestKind.Txn: {
        const req = (input.local as TxnRequest | undefined) ?? TxnRequestCodec.decode(input.payload);
        checkTxnAuth(this.store, caller, req, leaseKeys);
        return base(req);
      }
      case RequestKind.LeaseRevoke: {
        const req = (input.local as LeaseRevokeRequest | undefined) ?? LeaseRevokeRequestCodec.decode(input.payload);
        checkLeasePuts(this.store, caller, leaseKeys, req.ID);
        return base(req);
      }
      default:
        return base(input.local);
    }
  }

  private applyAuth(input: AuthApplyInput): unknown {
    const s = this.store;
    const p = input.payload;
    switch (input.kind) {
      case RequestKind.Authenticate: {
        const r = decodeInternalAuthenticate(p);
        const token = s.applyAuthenticate(r.name, r.simpleToken, input.index, input.proposedHere);
        return { header: this.env.header(), token };
      }
      case RequestKind.AuthEnable:
        s.applyEnable();
        break;
      case RequestKind.AuthDisable:
        s.applyDisable();
        break;
      case RequestKind.AuthUserAdd:
        s.applyUserAdd(AuthUserAddRequest.decode(p));
        break;
      case RequestKind.AuthUserDelete:
        s.applyUserDelete(AuthUserDeleteRequest.decode(p).name);
        break;
      case RequestKind.AuthUserChangePassword:
        s.applyUserChangePassword(AuthUserChangePasswordRequest.decode(p));
        break;
      case RequestKind.AuthUserGrantRole: {
        const r = AuthUserGrantRoleRequest.decode(p);
        s.applyUserGrantRole(r.user, r.role);
        break;
      }
      case RequestKind.AuthUserRevokeRole: {
        const r = AuthUserRevokeRoleRequest.decode(p);
        s.applyUserRevokeRole(r.name, r.role);
        break;
      }
      case RequestKind.AuthRoleAdd:
        s.applyRoleAdd(AuthRoleAddRequest.decode(p).name);
        break;
      case RequestKind.AuthRoleDelete:
        s.applyRoleDelete(AuthRoleDeleteRequest.decode(p).role);
        break;
      case RequestKind.AuthRoleGrantPermission:
        s.applyRoleGrantPermission(AuthRoleGrantPermissionRequest.decode(p));
        break;
      case RequestKind.AuthRoleRevokePermission:
        s.applyRoleRevokePermission(AuthRoleRevokePermissionRequest.decode(p));
        break;
    }
    return { header: this.env.header() };
  }
}

/** etcd's InternalAuthenticateRequest: `name = 1`, `password = 2` (never set), `simple_token = 3`. */
export function encodeInternalAuthenticate(name: string, simpleToken: string): Uint8Array {
  const w = new BinaryWriter();
  if (name !== '') w.uint32(10).string(name);
  if (simpleToken !== '') w.uint32(26).string(simpleToken);
  return w.finish();
}

export function decodeInternalAuthenticate(bytes: Uint8Array): { name: string; simpleToken: string } {
  const r = new BinaryReader(bytes);
  let name = '';
  let simpleToken = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 10) name = r.string();
    else if (tag === 26) simpleToken = r.string();
    else r.skip(tag & 7);
  }
  return { name, simpleToken };
}
