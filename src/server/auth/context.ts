/**
 * The caller of the request being handled. The API's auth layer resolves the caller once per
 * call (token, or client certificate) and runs the handler with it; what the handler does on
 * the member's side (reads, proposals, the lock and election recipes' own requests) sees the
 * same caller without passing it along. It is set only while auth is enabled: with auth off,
 * every check passes and nothing needs to know who asks.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuthInfo } from './tokens.ts';

/** No credentials: etcd's empty AuthInfo (user "", revision 0). */
export const ANONYMOUS: AuthInfo = Object.freeze({ username: '', revision: 0 });

const caller = new AsyncLocalStorage<AuthInfo>();

/** Runs `fn` as `info`'s request. */
export function runAsCaller<T>(info: AuthInfo, fn: () => T): T {
  return caller.run(info, fn);
}

/** The caller of the request being handled; ANONYMOUS outside any (or with auth off). */
export function currentCaller(): AuthInfo {
  return caller.getStore() ?? ANONYMOUS;
}
