/**
 * The auth store's error catalogue: one class, one stable code per condition, etcd's own
 * internal messages (`auth: ...`). `src/api/errors.ts` maps each code to etcd's gRPC error
 * (`etcdserver: ...`); codes it does not map answer UNKNOWN with the message, as etcd does.
 */
export const AuthErrorCode = {
  RootUserNotExist: 'AUTH_ROOT_USER_NOT_EXIST',
  RootRoleNotExist: 'AUTH_ROOT_ROLE_NOT_EXIST',
  UserAlreadyExist: 'AUTH_USER_ALREADY_EXIST',
  UserEmpty: 'AUTH_USER_EMPTY',
  UserNotFound: 'AUTH_USER_NOT_FOUND',
  RoleAlreadyExist: 'AUTH_ROLE_ALREADY_EXIST',
  RoleNotFound: 'AUTH_ROLE_NOT_FOUND',
  RoleEmpty: 'AUTH_ROLE_EMPTY',
  PermissionNotGiven: 'AUTH_PERMISSION_NOT_GIVEN',
  AuthFailed: 'AUTH_FAILED',
  NoPasswordUser: 'AUTH_NO_PASSWORD_USER',
  PermissionDenied: 'AUTH_PERMISSION_DENIED',
  RoleNotGranted: 'AUTH_ROLE_NOT_GRANTED',
  PermissionNotGranted: 'AUTH_PERMISSION_NOT_GRANTED',
  AuthNotEnabled: 'AUTH_NOT_ENABLED',
  AuthOldRevision: 'AUTH_OLD_REVISION',
  InvalidAuthToken: 'AUTH_INVALID_TOKEN',
  InvalidAuthOpts: 'AUTH_INVALID_OPTS',
  InvalidAuthMgmt: 'AUTH_INVALID_MGMT',
  InvalidAuthMethod: 'AUTH_INVALID_METHOD',
  MissingKey: 'AUTH_MISSING_KEY',
  KeyMismatch: 'AUTH_KEY_MISMATCH',
  VerifyOnly: 'AUTH_VERIFY_ONLY',
  TooManyRequests: 'AUTH_TOO_MANY_REQUESTS',
} as const;
export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

export const AUTH_ERROR_MESSAGES: Readonly<Record<AuthErrorCode, string>> = {
  AUTH_ROOT_USER_NOT_EXIST: 'auth: root user does not exist',
  AUTH_ROOT_ROLE_NOT_EXIST: 'auth: root user does not have root role',
  AUTH_USER_ALREADY_EXIST: 'auth: user already exists',
  AUTH_USER_EMPTY: 'auth: user name is empty',
  AUTH_USER_NOT_FOUND: 'auth: user not found',
  AUTH_ROLE_ALREADY_EXIST: 'auth: role already exists',
  AUTH_ROLE_NOT_FOUND: 'auth: role not found',
  AUTH_ROLE_EMPTY: 'auth: role name is empty',
  AUTH_PERMISSION_NOT_GIVEN: 'auth: permission not given',
  AUTH_FAILED: 'auth: authentication failed, invalid user ID or password',
  AUTH_NO_PASSWORD_USER: 'auth: authentication failed, password was given for no password user',
  AUTH_PERMISSION_DENIED: 'auth: permission denied',
  AUTH_ROLE_NOT_GRANTED: 'auth: role is not granted to the user',
  AUTH_PERMISSION_NOT_GRANTED: 'auth: permission is not granted to the role',
  AUTH_NOT_ENABLED: 'auth: authentication is not enabled',
  AUTH_OLD_REVISION: 'auth: revision in header is old',
  AUTH_INVALID_TOKEN: 'auth: invalid auth token',
  AUTH_INVALID_OPTS: 'auth: invalid auth options',
  AUTH_INVALID_MGMT: 'auth: invalid auth management',
  AUTH_INVALID_METHOD: 'auth: invalid auth signature method',
  AUTH_MISSING_KEY: 'auth: missing key data',
  AUTH_KEY_MISMATCH: "auth: public and private keys don't match",
  AUTH_VERIFY_ONLY: 'auth: token signing attempted with verify-only key',
  AUTH_TOO_MANY_REQUESTS: 'auth: too many password checks in progress',
};

export class AuthError extends Error {
  readonly code: AuthErrorCode;

  constructor(code: AuthErrorCode, message: string = AUTH_ERROR_MESSAGES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthError';
    this.code = code;
  }
}
