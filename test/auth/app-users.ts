// What the auth tests that run against a member over gRPC share: a call with an optional token,
// and the users they start from.
import type { Channel } from '../../src/client/channel.ts';
import {
  AuthRoleGrantPermissionRequest,
  AuthService,
  AuthUserAddRequest,
  KVService,
  type Method,
  Permission_Type,
  PutRequest,
} from '../../src/proto/index.ts';

const CALL_TIMEOUT_MS = 5_000;
const b = (s: string) => Buffer.from(s);

/** A unary call, as the user of `token` when there is one. */
export function call<Req, Res>(ch: Channel, method: Method<Req, Res>, req: Req, token?: string): Promise<Res> {
  return ch.unary(method, req, { timeoutMs: CALL_TIMEOUT_MS, ...(token === undefined ? {} : { metadata: { token } }) });
}

/** root (password rootpw), alice (password a) with read-write on app/, app/x = `value`, auth enabled. */
export async function setUpAppUsers(ch: Channel, value: string): Promise<void> {
  await call(ch, AuthService.UserAdd, AuthUserAddRequest.fromPartial({ name: 'root', password: 'rootpw' }));
  await call(ch, AuthService.UserGrantRole, { user: 'root', role: 'root' });
  await call(ch, AuthService.RoleAdd, { name: 'app' });
  await call(
    ch,
    AuthService.RoleGrantPermission,
    AuthRoleGrantPermissionRequest.fromPartial({
      name: 'app',
      perm: { permType: Permission_Type.READWRITE, key: b('app/'), rangeEnd: b('app0') },
    }),
  );
  await call(ch, AuthService.UserAdd, AuthUserAddRequest.fromPartial({ name: 'alice', password: 'a' }));
  await call(ch, AuthService.UserGrantRole, { user: 'alice', role: 'app' });
  await call(ch, KVService.Put, PutRequest.fromPartial({ key: b('app/x'), value: b(value) }));
  await call(ch, AuthService.AuthEnable, {});
}
