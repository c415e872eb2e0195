/**
 * The auth store: users, roles and their key permissions, the enabled flag and the auth
 * revision, kept in the backend as etcd keeps them so that snapshots carry them in etcd's own
 * format:
 *
 *   bucket `auth`       `authEnabled` -> [1] or [0], `authRevision` -> uint64 big endian
 *   bucket `authUsers`  user name -> authpb.User (name, bcrypt hash, sorted roles, options)
 *   bucket `authRoles`  role name -> authpb.Role (name, permissions sorted by key)
 *
 * Every change arrives through raft (the `apply*` methods run in the apply loop, on every
 * member alike) and bumps the revision, except enabling auth and granting a role a user
 * already has, as in etcd. A bump drops the cached permissions, and a request checked against
 * an older revision is refused with `revision of auth store is old`.
 */
import type {
  AuthRoleGrantPermissionRequest,
  AuthRoleRevokePermissionRequest,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
} from '../../proto/index.ts';
import { type Permission, Permission_Type, Role, User } from '../../proto/index.ts';
import { type Backend, Bucket } from '../../storage/backend/index.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import { PasswordHasher } from './password.ts';
import { RangePermissions } from './perms.ts';
import type { AuthInfo, TokenProvider } from './tokens.ts';

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

const AUTH_ENABLED_KEY = Buffer.from('authEnabled');
const AUTH_REVISION_KEY = Buffer.from('authRevision');
const ENABLED = Uint8Array.of(1);
const DISABLED = Uint8Array.of(0);

/** What `role get root` answers: read and write on every key (etcd 3.5's rootPerm). */
const ROOT_PERMISSION: Permission = Object.freeze({
  permType: Permission_Type.READWRITE,
  key: new Uint8Array(0),
  rangeEnd: Uint8Array.of(0),
});

export interface AuthStoreOptions {
  tokens: TokenProvider;
  bcryptCost: number;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
/** Names in the backend's (bbolt's) order: by their bytes. */
const byBytes = (a: string, b: string): number => Buffer.compare(utf8(a), utf8(b));

function hasRootRole(user: User): boolean {
  return user.roles.includes(ROOT_ROLE);
}

export class AuthStore {
  private backend: Backend;
  private enabledFlag = false;
  private rev = 0;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  /** user -> merged permissions; dropped whenever the revision moves. */
  private readonly permCache = new Map<string, RangePermissions>();
  readonly tokens: TokenProvider;
  readonly passwords: PasswordHasher;

  constructor(backend: Backend, options: AuthStoreOptions) {
    this.tokens = options.tokens;
    this.passwords = new PasswordHasher(options.bcryptCost);
    this.backend = backend;
    this.load(backend);
  }

  /** Reads everything from `backend` (at start, and when a snapshot from the leader replaces it). */
  reload(backend: Backend): void {
    this.backend = backend;
    this.load(backend);
  }

  private load(backend: Backend): void {
    this.users.clear();
    this.roles.clear();
    this.permCache.clear();
    const users = backend.range(Bucket.authUsers, new Uint8Array(0), null);
    for (const value of users.values) {
      const u = User.decode(value);
      this.users.set(text(u.name), u);
    }
    const roles = backend.range(Bucket.authRoles, new Uint8Array(0), null);
    for (const value of roles.values) {
      const r = Role.decode(value);
      this.roles.set(text(r.name), r);
    }
    const enabled = backend.get(Bucket.auth, AUTH_ENABLED_KEY);
    this.enabledFlag = enabled !== undefined && enabled.length === 1 && enabled[0] === 1;
    const rev = backend.get(Bucket.auth, AUTH_REVISION_KEY);
    this.rev = rev !== undefined && rev.length === 8 ? Number(Buffer.from(rev).readBigUInt64BE(0)) : 0;
    // etcd starts the revision at 1 in a new store.
    if (this.rev === 0) this.commitRevision();
    if (this.enabledFlag) this.tokens.enable();
    else this.tokens.disable();
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.rev;
  }

  close(): void {
    this.tokens.close();
  }

  // -------------------------------------------------------------------------------------------
  // Persistence

  private commitRevision(): void {
    this.rev += 1;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(this.rev));
    this.backend.put(Bucket.auth, AUTH_REVISION_KEY, b);
    this.permCache.clear();
  }

  private putUser(user: User): void {
    const name = text(user.name);
    this.users.set(name, user);
    this.backend.put(Bucket.authUsers, utf8(name), User.encode(user).finish());
  }

  private deleteUser(name: string): void {
    this.users.delete(name);
    this.backend.delete(Bucket.authUsers, utf8(name));
  }

  private putRole(role: Role): void {
    const name = text(role.name);
    this.roles.set(name, role);
    this.backend.put(Bucket.authRoles, utf8(name), Role.encode(role).finish());
  }

  private deleteRole(name: string): void {
    this.roles.delete(name);
    this.backend.delete(Bucket.authRoles, utf8(name));
  }

  // -------------------------------------------------------------------------------------------
  // Changes, applied through raft

  applyEnable(): void {
    if (this.enabledFlag) return;
    const root = this.users.get(ROOT_USER);
    if (root === undefined) throw new AuthError(AuthErrorCode.RootUserNotExist);
    if (!hasRootRole(root)) throw new AuthError(AuthErrorCode.RootRoleNotExist);
    this.backend.put(Bucket.auth, AUTH_ENABLED_KEY, ENABLED);
    this.enabledFlag = true;
    this.permCache.clear();
    this.tokens.enable();
  }

  applyDisable(): void {
    if (!this.enabledFlag) return;
    this.backend.put(Bucket.auth, AUTH_ENABLED_KEY, DISABLED);
    this.commitRevision();
    this.enabledFlag = false;
    this.tokens.disable();
  }

  applyUserAdd(r: AuthUserAddRequest): void {
    if (r.name.length === 0) throw new AuthError(AuthErrorCode.UserEmpty);
    if (this.users.has(r.name)) throw new AuthError(AuthErrorCode.UserAlreadyExist);
    const options = r.options ?? { noPassword: false };
    const password = options.noPassword ? new Uint8Array(0) : this.selectPassword(r.password, r.hashedPassword);
    this.putUser({ name: utf8(r.name), password, roles: [], options });
    this.commitRevision();
  }

  applyUserDelete(name: string): void {
    if (this.enabledFlag && name === ROOT_USER) throw new AuthError(AuthErrorCode.InvalidAuthMgmt);
    if (!this.users.has(name)) throw new AuthError(AuthErrorCode.UserNotFound);
    this.deleteUser(name);
    this.commitRevision();
    this.tokens.invalidateUser(name);
  }

  applyUserChangePassword(r: AuthUserChangePasswordRequest): void {
    const user = this.users.get(r.name);
    if (user === undefined) throw new AuthError(AuthErrorCode.UserNotFound);
    const noPassword = user.options?.noPassword === true;
    const password = noPassword ? new Uint8Array(0) : this.selectPassword(r.password, r.hashedPassword);
    this.putUser({ ...user, password });
    this.commitRevision();
    this.tokens.invalidateUser(r.name);
  }

  /**
   * The hash a change carries (base64, made by the proposer), or, for an entry without one,
   * a hash made now (etcd's path for entries of members older than 3.5).
   */
  private selectPassword(password: string, hashed: string): Uint8Array {
    if (hashed === '' && password !== '') return utf8(this.passwords.hashSync(password));
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(hashed) || hashed.length % 4 !== 0) {
      throw new AuthError(AuthErrorCode.NoPasswordUser);
    }
    return Buffer.from(hashed, 'base64');
  }

  applyUserGrantRole(userName: string, roleName: string): void {
    const user = this.users.get(userName);
    if (user === undefined) throw new AuthError(AuthErrorCode.UserNotFound);
    if (roleName !== ROOT_ROLE && !this.roles.has(roleName)) throw new AuthError(AuthErrorCode.RoleNotFound);
    if (user.roles.includes(roleName)) return; // already granted: nothing changes
    this.putUser({ ...user, roles: [...user.roles, roleName].sort(byBytes) });
    this.commitRevision();
  }

  applyUserRevokeRole(userName: string, roleName: string): void {
    if (this.enabledFlag && userName === ROOT_USER && roleName === ROOT_ROLE) {
      throw new AuthError(AuthErrorCode.InvalidAuthMgmt);
    }
    const user = this.users.get(userName);
    if (user === undefined) throw new AuthError(AuthErrorCode.UserNotFound);
    const roles = user.roles.filter((r) => r !== roleName);
    if (roles.length === user.roles.length) throw new AuthError(AuthErrorCode.RoleNotGranted);
    this.putUser({ ...user, roles });
    this.commitRevision();
  }

  applyRoleAdd(name: string): void {
    if (name.length === 0) throw new AuthError(AuthErrorCode.RoleEmpty);
    if (this.roles.has(name)) throw new AuthError(AuthErrorCode.RoleAlreadyExist);
    this.putRole({ name: utf8(name), keyPermission: [] });
    this.commitRevision();
  }

  /** Deletes the role and takes it from every user who had it. */
  applyRoleDelete(name: string): void {
    if (this.enabledFlag && name === ROOT_ROLE) throw new AuthError(AuthErrorCode.InvalidAuthMgmt);
    if (!this.roles.has(name)) throw new AuthError(AuthErrorCode.RoleNotFound);
    this.deleteRole(name);
    for (const user of [...this.users.values()]) {
      if (!user.roles.includes(name)) continue;
      this.putUser({ ...user, roles: user.roles.filter((r) => r !== name) });
    }
    this.commitRevision();
  }

  /** Adds the permission, or changes the type of the one with the same key and range end. */
  applyRoleGrantPermission(r: AuthRoleGrantPermissionRequest): void {
    const perm = r.perm;
    if (perm === undefined) throw new AuthError(AuthErrorCode.PermissionNotGiven);
    const role = this.roles.get(r.name);
    if (role === undefined) throw new AuthError(AuthErrorCode.RoleNotFound);
    const fresh: Permission = {
      permType: perm.permType,
      key: Uint8Array.from(perm.key),
      rangeEnd: Uint8Array.from(perm.rangeEnd),
    };
    const same = role.keyPermission.findIndex(
      (p) => Buffer.compare(p.key, fresh.key) === 0 && Buffer.compare(p.rangeEnd, fresh.rangeEnd) === 0,
    );
    const perms =
      same >= 0
        ? role.keyPermission.map((p, i) => (i === same ? { ...p, permType: fresh.permType } : p))
        : [...role.keyPermission, fresh].sort((a, b) => Buffer.compare(a.key, b.key));
    this.putRole({ name: role.name, keyPermission: perms });
    this.commitRevision();
  }

  applyRoleRevokePermission(r: AuthRoleRevokePermissionRequest): void {
    const role = this.roles.get(r.role);
    if (role === undefined) throw new AuthError(AuthErrorCode.RoleNotFound);
    const perms = role.keyPermission.filter(
      (p) => Buffer.compare(p.key, r.key) !== 0 || Buffer.compare(p.rangeEnd, r.rangeEnd) !== 0,
    );
    if (perms.length === role.keyPermission.length) throw new AuthError(AuthErrorCode.PermissionNotGranted);
    this.putRole({ name: role.name, keyPermission: perms });
    this.commitRevision();
  }

  /**
   * Makes a token for `name`, whose password the proposer checked (the entry carries no
   * password). A no-password user cannot authenticate this way.
   */
  applyAuthenticate(name: string, prefix: string, index: number, local: boolean): string {
    if (!this.enabledFlag) throw new AuthError(AuthErrorCode.AuthNotEnabled);
    const user = this.users.get(name);
    if (user === undefined || user.options?.noPassword === true) throw new AuthError(AuthErrorCode.AuthFailed);
    return this.tokens.assign(name, this.rev, index, prefix, local);
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  userGet(name: string): string[] {
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError(AuthErrorCode.UserNotFound);
    return [...user.roles];
  }

  userList(): string[] {
    return [...this.users.keys()].sort(byBytes);
  }

  roleGet(name: string): Permission[] {
    const role = this.roles.get(name);
    if (role === undefined) throw new AuthError(AuthErrorCode.RoleNotFound);
    return name === ROOT_ROLE ? [ROOT_PERMISSION] : role.keyPermission.map((p) => ({ ...p }));
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort(byBytes);
  }

  hasRole(userName: string, roleName: string): boolean {
    return this.users.get(userName)?.roles.includes(roleName) === true;
  }

  /**
   * etcd's CheckPassword: the auth revision the password was checked at. The hash is compared
   * off the apply path; the caller proposes the Authenticate entry afterwards and checks the
   * revision did not move meanwhile.
   */
  async checkPassword(name: string, password: string): Promise<number> {
    if (!this.enabledFlag) throw new AuthError(AuthErrorCode.AuthNotEnabled);
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError(AuthErrorCode.AuthFailed);
    if (user.options?.noPassword === true) throw new AuthError(AuthErrorCode.NoPasswordUser);
    const revision = this.rev;
    if (!(await this.passwords.compare(password, user.password))) throw new AuthError(AuthErrorCode.AuthFailed);
    return revision;
  }

  // -------------------------------------------------------------------------------------------
  // Permission checks (etcd's isOpPermitted and IsAdminPermitted)

  private checkOp(ai: AuthInfo, key: Uint8Array, end: Uint8Array, type: 'read' | 'write'): void {
    if (!this.enabledFlag) return;
    if (ai.revision === 0) throw new AuthError(AuthErrorCode.UserEmpty);
    if (ai.revision < this.rev) throw new AuthError(AuthErrorCode.AuthOldRevision);
    const user = this.users.get(ai.username);
    if (user === undefined) throw new AuthError(AuthErrorCode.PermissionDenied);
    if (hasRootRole(user)) return;
    if (!this.permissionsOf(ai.username, user).allows(type, key, end)) {
      throw new AuthError(AuthErrorCode.PermissionDenied);
    }
  }

  private permissionsOf(name: string, user: User): RangePermissions {
    let perms = this.permCache.get(name);
    if (perms === undefined) {
      perms = RangePermissions.of(user.roles, (r) => this.roles.get(r));
      this.permCache.set(name, perms);
    }
    return perms;
  }

  /** Read access to `key` (end empty) or [key, end). */
  checkRange(ai: AuthInfo, key: Uint8Array, end: Uint8Array): void {
    this.checkOp(ai, key, end, 'read');
  }

  checkPut(ai: AuthInfo, key: Uint8Array): void {
    this.checkOp(ai, key, EMPTY, 'write');
  }

  checkDeleteRange(ai: AuthInfo, key: Uint8Array, end: Uint8Array): void {
    this.checkOp(ai, key, end, 'write');
  }

  /** The caller has the root role. */
  checkAdmin(ai: AuthInfo): void {
    if (!this.enabledFlag) return;
    if (ai.username === '') throw new AuthError(AuthErrorCode.UserEmpty);
    const user = this.users.get(ai.username);
    if (user === undefined) throw new AuthError(AuthErrorCode.UserNotFound);
    if (!hasRootRole(user)) throw new AuthError(AuthErrorCode.PermissionDenied);
  }

  isAdmin(ai: AuthInfo): boolean {
    if (!this.enabledFlag) return true;
    const user = this.users.get(ai.username);
    return user !== undefined && hasRootRole(user);
  }

  /** The caller a token names (refreshing a simple token's TTL), or InvalidAuthToken. */
  async authInfoFromToken(token: string): Promise<AuthInfo> {
    const info = await this.tokens.info(token, this.rev);
    if (info === undefined) throw new AuthError(AuthErrorCode.InvalidAuthToken);
    return info;
  }
}

const EMPTY = new Uint8Array(0);
