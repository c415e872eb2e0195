// Authentication and role-based access control of a member: the auth store, tokens, the
// permission checks of requests and the auth layer of the apply path.
export { AUTH_KINDS, AuthApplier, type AuthApplierEnv, type AuthApplyInput } from './applier.ts';
export {
  checkDeleteRangeAuth,
  checkLeasePuts,
  checkPutAuth,
  checkTxnAuth,
  type LeaseKeys,
  requireCaller,
  serializeRead,
} from './checks.ts';
export { ANONYMOUS, currentCaller, runAsCaller } from './context.ts';
export { AUTH_ERROR_MESSAGES, AuthError, AuthErrorCode } from './errors.ts';
export { JwtKeys, type JwtMethod, JwtMethods } from './jwt.ts';
export { PasswordHasher } from './password.ts';
export { IntervalSet, RangePermissions } from './perms.ts';
export { AUTHENTICATE_ATTEMPTS_MAX, type AuthMember, AuthServer } from './service.ts';
export { AuthStore, type AuthStoreOptions, ROOT_ROLE, ROOT_USER } from './store.ts';
export {
  type AuthInfo,
  JwtTokenProvider,
  newTokenProvider,
  parseAuthTokenSpec,
  SIMPLE_TOKENS_MAX,
  SimpleTokenProvider,
  type TokenProvider,
} from './tokens.ts';
