/**
 * The Auth RPCs on a member (etcd's v3_server Authenticator): changes are proposed through
 * raft and checked for root when they apply; reads (status, user and role lists and details)
 * are linearizable and answered by the local store with etcd's permission rules (a user may
 * read itself, and the roles it has). Passwords are hashed here, before the request goes
 * through consensus, so the log never holds one.
 */
import {
  type AuthDisableResponse,
  type AuthEnableResponse,
  type AuthenticateRequest,
  type AuthenticateResponse,
  type AuthRoleAddRequest,
  AuthRoleAddRequest as AuthRoleAddRequestCodec,
  type AuthRoleAddResponse,
  type AuthRoleDeleteRequest,
  AuthRoleDeleteRequest as AuthRoleDeleteRequestCodec,
  type AuthRoleDeleteResponse,
  type AuthRoleGetRequest,
  type AuthRoleGetResponse,
  type AuthRoleGrantPermissionRequest,
  AuthRoleGrantPermissionRequest as AuthRoleGrantPermissionRequestCodec,
  type AuthRoleGrantPermissionResponse,
  type AuthRoleListResponse,
  type AuthRoleRevokePermissionRequest,
  AuthRoleRevokePermissionRequest as AuthRoleRevokePermissionRequestCodec,
  type AuthRoleRevokePermissionResponse,
  type AuthStatusResponse,
  type AuthUserAddRequest,
  AuthUserAddRequest as AuthUserAddRequestCodec,
  type AuthUserAddResponse,
  type AuthUserChangePasswordRequest,
  AuthUserChangePasswordRequest as AuthUserChangePasswordRequestCodec,
  type AuthUserChangePasswordResponse,
  type AuthUserDeleteRequest,
  AuthUserDeleteRequest as AuthUserDeleteRequestCodec,
  type AuthUserDeleteResponse,
  type AuthUserGetRequest,
  type AuthUserGetResponse,
  type AuthUserGrantRoleRequest,
  AuthUserGrantRoleRequest as AuthUserGrantRoleRequestCodec,
  type AuthUserGrantRoleResponse,
  type AuthUserListResponse,
  type AuthUserRevokeRoleRequest,
  AuthUserRevokeRoleRequest as AuthUserRevokeRoleRequestCodec,
  type AuthUserRevokeRoleResponse,
  type ResponseHeader,
} from '../../proto/index.ts';
import { RequestKind } from '../raft-request.ts';
import { encodeInternalAuthenticate } from './applier.ts';
import { serializeRead } from './checks.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import type { AuthStore } from './store.ts';
import type { AuthInfo } from './tokens.ts';

/** Authenticate proposes again when the auth store changed while the password was checked; this many times at most. */
export const AUTHENTICATE_ATTEMPTS_MAX = 5;

/** What the Auth RPCs need of the member. */
export interface AuthMember {
  readonly auth: AuthStore;
  linearizableReadNotify(): Promise<void>;
  /** Proposes an auth change (the caller is stamped on it); resolves with the applied answer. */
  proposeAuth<T>(kind: RequestKind, wire: Uint8Array): Promise<T>;
  header(): ResponseHeader;
}

const NO_REQUEST = new Uint8Array(0);

export class AuthServer {
  private readonly member: AuthMember;

  constructor(member: AuthMember) {
    this.member = member;
  }

  private get store(): AuthStore {
    return this.member.auth;
  }

  authEnable(): Promise<AuthEnableResponse> {
    return this.member.proposeAuth(RequestKind.AuthEnable, NO_REQUEST);
  }

  authDisable(): Promise<AuthDisableResponse> {
    return this.member.proposeAuth(RequestKind.AuthDisable, NO_REQUEST);
  }

  /** Root only, as etcd 3.5 (its AuthStatus goes through the admin check of the apply path). */
  async authStatus(): Promise<AuthStatusResponse> {
    await this.member.linearizableReadNotify();
    return this.read(
      (ai) => this.store.checkAdmin(ai),
      () => ({
        header: this.member.header(),
        enabled: this.store.enabled,
        authRevision: BigInt(this.store.revision),
      }),
    );
  }

  /**
   * Checks the password (bcrypt, off the apply path), then proposes the Authenticate entry that
   * makes the token on every member. If the auth store changed meanwhile (a password change,
   * a deleted user), the check is done again.
   */
  async authenticate(req: AuthenticateRequest): Promise<AuthenticateResponse> {
    await this.member.linearizableReadNotify();
    for (let attempt = 0; attempt < AUTHENTICATE_ATTEMPTS_MAX; attempt++) {
      const checkedAt = await this.store.checkPassword(req.name, req.password);
      const prefix = this.store.tokens.genTokenPrefix();
      const resp = await this.member.proposeAuth<AuthenticateResponse>(
        RequestKind.Authenticate,
        encodeInternalAuthenticate(req.name, prefix),
      );
      if (checkedAt === this.store.revision) return resp;
    }
    throw new AuthError(AuthErrorCode.AuthOldRevision);
  }

  async userAdd(req: AuthUserAddRequest): Promise<AuthUserAddResponse> {
    const noPassword = req.options?.noPassword === true;
    const hashedPassword = noPassword ? '' : await this.hash(req.password);
    const wire = AuthUserAddRequestCodec.encode({ ...req, password: '', hashedPassword }).finish();
    return this.member.proposeAuth(RequestKind.AuthUserAdd, wire);
  }

  async userChangePassword(req: AuthUserChangePasswordRequest): Promise<AuthUserChangePasswordResponse> {
    const hashedPassword = req.password === '' ? req.hashedPassword : await this.hash(req.password);
    const wire = AuthUserChangePasswordRequestCodec.encode({ ...req, password: '', hashedPassword }).finish();
    return this.member.proposeAuth(RequestKind.AuthUserChangePassword, wire);
  }

  private async hash(password: string): Promise<string> {
    return Buffer.from(await this.store.passwords.hash(password), 'latin1').toString('base64');
  }

  userDelete(req: AuthUserDeleteRequest): Promise<AuthUserDeleteResponse> {
    return this.member.proposeAuth(RequestKind.AuthUserDelete, AuthUserDeleteRequestCodec.encode(req).finish());
  }

  userGrantRole(req: AuthUserGrantRoleRequest): Promise<AuthUserGrantRoleResponse> {
    return this.member.proposeAuth(RequestKind.AuthUserGrantRole, AuthUserGrantRoleRequestCodec.encode(req).finish());
  }

  userRevokeRole(req: AuthUserRevokeRoleRequest): Promise<AuthUserRevokeRoleResponse> {
    return this.member.proposeAuth(RequestKind.AuthUserRevokeRole, AuthUserRevokeRoleRequestCodec.encode(req).finish());
  }

  roleAdd(req: AuthRoleAddRequest): Promise<AuthRoleAddResponse> {
    return this.member.proposeAuth(RequestKind.AuthRoleAdd, AuthRoleAddRequestCodec.encode(req).finish());
  }

  roleDelete(req: AuthRoleDeleteRequest): Promise<AuthRoleDeleteResponse> {
    return this.member.proposeAuth(RequestKind.AuthRoleDelete, AuthRoleDeleteRequestCodec.encode(req).finish());
  }

  roleGrantPermission(req: AuthRoleGrantPermissionRequest): Promise<AuthRoleGrantPermissionResponse> {
    return this.member.proposeAuth(
      RequestKind.AuthRoleGrantPermission,
      AuthRoleGrantPermissionRequestCodec.encode(req).finish(),
    );
  }

  roleRevokePermission(req: AuthRoleRevokePermissionRequest): Promise<AuthRoleRevokePermissionResponse> {
    return this.member.proposeAuth(
      RequestKind.AuthRoleRevokePermission,
      AuthRoleRevokePermissionRequestCodec.encode(req).finish(),
    );
  }

  /** Root, or the user itself. */
  async userGet(req: AuthUserGetRequest): Promise<AuthUserGetResponse> {
    await this.member.linearizableReadNotify();
    return this.read(
      (ai) => {
        if (ai.username !== req.name) this.store.checkAdmin(ai);
      },
      () => ({ header: this.member.header(), roles: this.store.userGet(req.name) }),
    );
  }

  /** Root, or a user who has the role. */
  async roleGet(req: AuthRoleGetRequest): Promise<AuthRoleGetResponse> {
    await this.member.linearizableReadNotify();
    return this.read(
      (ai) => {
        if (!this.store.hasRole(ai.username, req.role)) this.store.checkAdmin(ai);
      },
      () => ({ header: this.member.header(), perm: this.store.roleGet(req.role) }),
    );
  }

  async userList(): Promise<AuthUserListResponse> {
    await this.member.linearizableReadNotify();
    return this.read(
      (ai) => this.store.checkAdmin(ai),
      () => ({ header: this.member.header(), users: this.store.userList() }),
    );
  }

  async roleList(): Promise<AuthRoleListResponse> {
    await this.member.linearizableReadNotify();
    return this.read(
      (ai) => this.store.checkAdmin(ai),
      () => ({ header: this.member.header(), roles: this.store.roleList() }),
    );
  }

  /** A read with the caller checked first and the auth revision checked after (etcd's doSerialize). */
  private read<T>(check: (ai: AuthInfo) => void, get: () => T): T {
    return serializeRead(this.store, check, get);
  }
}
