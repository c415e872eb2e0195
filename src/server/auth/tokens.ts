/**
 * Auth tokens, as etcd's `--auth-token` chooses them:
 *
 * - `simple`: `<16 random letters>.<raft index>`, made when the Authenticate entry applies, so
 *   every member knows it; kept in memory (bounded) and forgotten after `--auth-token-ttl`
 *   seconds without use, when the user is deleted or changes password, and when auth is
 *   disabled. A member that has not yet applied the entry a token names waits for it a little.
 * - `jwt,sign-method=RS256,priv-key=...,pub-key=...,ttl=5m`: signed tokens that carry the user
 *   and the auth revision; any member with the key checks them without shared state.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseGoDuration } from '../config-values.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import { isJwtMethod, JwtKeys } from './jwt.ts';

/** Who a request comes from: a user and the auth revision their credentials were checked at (0: nobody). */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}

export interface TokenProvider {
  readonly type: 'simple' | 'jwt';
  /** The caller a token names, or undefined when it is not valid here. */
  info(token: string, revision: number): Promise<AuthInfo | undefined>;
  /**
   * Makes a token for `username`, when the Authenticate entry at `index` applies. `prefix` is
   * the random part the proposer chose; `local` is true on the member that proposed it.
   * Returns '' when this member has nothing to make (a JWT for another member's client).
   */
  assign(username: string, revision: number, index: number, prefix: string, local: boolean): string;
  /** A new random prefix for a simple token ('' for JWT). */
  genTokenPrefix(): string;
  enable(): void;
  disable(): void;
  invalidateUser(username: string): void;
  /** The raft index of the entry being applied (tokens naming a later index may still come). */
  observeIndex(index: number): void;
  close(): void;
}

/** etcd's simpleTokenTTLDefault, used for --auth-token-ttl's default. */
export const SIMPLE_TOKEN_TTL_DEFAULT_SEC = 300;
/** Simple tokens one member keeps at most; the least recently used go first. */
export const SIMPLE_TOKENS_MAX = 100_000;
/** Requests waiting for the entry of a token this member has not applied yet, at most. */
export const SIMPLE_TOKEN_WAITERS_MAX = 1024;
/** How long such a request waits. */
export const SIMPLE_TOKEN_WAIT_MS = 2000;
/** How often expired simple tokens are dropped. */
const SIMPLE_TOKEN_SWEEP_MS = 1000;
const SIMPLE_TOKEN_PREFIX_LENGTH = 16;
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** jwt's default token lifetime (etcd's DefaultTTL). */
export const JWT_TTL_DEFAULT_MS = 5 * 60 * 1000;

interface SimpleToken {
  username: string;
  expiresAtMs: number;
}

export class SimpleTokenProvider implements TokenProvider {
  readonly type = 'simple';
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** token -> owner; Map order is least recently used first, so expiry order too. */
  private readonly tokens = new Map<string, SimpleToken>();
  /** Requests waiting for a token whose entry is not applied yet. */
  private readonly waiters = new Map<string, Array<(ok: boolean) => void>>();
  private waiterCount = 0;
  private lastIndex = 0;
  private enabled = false;
  private sweepTimer: NodeJS.Timeout | undefined = undefined;
  private readonly maxTokens: number;

  constructor(ttlSec: number, now: () => number = Date.now, maxTokens = SIMPLE_TOKENS_MAX) {
    if (!(ttlSec > 0)) throw new RangeError(`simple token TTL must be positive, got ${ttlSec}`);
    if (!(Number.isInteger(maxTokens) && maxTokens > 0)) throw new RangeError(`bad token bound ${maxTokens}`);
    this.ttlMs = ttlSec * 1000;
    this.now = now;
    this.maxTokens = maxTokens;
  }

  get size(): number {
    return this.tokens.size;
  }

  async info(token: string, revision: number): Promise<AuthInfo | undefined> {
    if (!this.enabled) return undefined;
    let entry = this.take(token);
    if (entry === undefined) {
      const index = simpleTokenIndex(token);
      if (index === undefined || index <= this.lastIndex) return undefined;
      if (!(await this.waitFor(token))) return undefined;
      entry = this.take(token);
      if (entry === undefined) return undefined;
    }
    return { username: entry.username, revision };
  }

  /** The token's entry if it is live, moved to the back with a fresh TTL. */
  private take(token: string): SimpleToken | undefined {
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    const now = this.now();
    this.tokens.delete(token);
    if (entry.expiresAtMs <= now) return undefined;
    entry.expiresAtMs = now + this.ttlMs;
    this.tokens.set(token, entry);
    return entry;
  }

  private waitFor(token: string): Promise<boolean> {
    if (this.waiterCount >= SIMPLE_TOKEN_WAITERS_MAX) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let list = this.waiters.get(token);
      if (list === undefined) this.waiters.set(token, (list = []));
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiterCount--;
        resolve(ok);
      };
      const timer = setTimeout(() => {
        const l = this.waiters.get(token);
        if (l !== undefined) {
          const i = l.indexOf(finish);
          if (i >= 0) l.splice(i, 1);
          if (l.length === 0) this.waiters.delete(token);
        }
        finish(false);
      }, SIMPLE_TOKEN_WAIT_MS);
      timer.unref();
      this.waiterCount++;
      list.push(finish);
    });
  }

  assign(username: string, _revision: number, index: number, prefix: string): string {
    const token = `${prefix}.${index}`;
    if (!this.enabled) return token;
    while (this.tokens.size >= this.maxTokens) {
      const oldest = this.tokens.keys().next();
      if (oldest.done === true) break;
      this.tokens.delete(oldest.value);
    }
    this.tokens.set(token, { username, expiresAtMs: this.now() + this.ttlMs });
    const waiting = this.waiters.get(token);
    if (waiting !== undefined) {
      this.waiters.delete(token);
      for (const w of waiting) w(true);
    }
    return token;
  }

  genTokenPrefix(): string {
    let out = '';
    for (let i = 0; i < SIMPLE_TOKEN_PREFIX_LENGTH; i++) out += LETTERS[randomInt(LETTERS.length)];
    return out;
  }

  enable(): void {
    if (this.enabled) return;
    this.enabled = true;
    this.sweepTimer = setInterval(() => this.sweep(), SIMPLE_TOKEN_SWEEP_MS);
    this.sweepTimer.unref();
  }

  disable(): void {
    this.enabled = false;
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.tokens.clear();
    for (const [, list] of this.waiters) for (const w of [...list]) w(false);
    this.waiters.clear();
  }

  invalidateUser(username: string): void {
    for (const [token, entry] of this.tokens) if (entry.username === username) this.tokens.delete(token);
  }

  observeIndex(index: number): void {
    if (index > this.lastIndex) this.lastIndex = index;
  }

  /** Drops expired tokens: they are at the front. */
  sweep(): void {
    const now = this.now();
    for (const [token, entry] of this.tokens) {
      if (entry.expiresAtMs > now) break;
      this.tokens.delete(token);
    }
  }

  close(): void {
    this.disable();
  }
}

/** The raft index of a well-formed simple token (`<prefix>.<index>`), else undefined. */
function simpleTokenIndex(token: string): number | undefined {
  const dot = token.indexOf('.');
  if (dot < 0 || token.indexOf('.', dot + 1) >= 0) return undefined;
  const digits = token.slice(dot + 1);
  if (!/^[0-9]{1,15}$/.test(digits)) return undefined;
  return Number(digits);
}

export class JwtTokenProvider implements TokenProvider {
  readonly type = 'jwt';
  readonly keys: JwtKeys;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(keys: JwtKeys, ttlMs: number, now: () => number = Date.now) {
    this.keys = keys;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  async info(token: string): Promise<AuthInfo | undefined> {
    const claims = this.keys.verify(token, this.now());
    return claims === undefined ? undefined : { username: claims.username, revision: claims.revision };
  }

  assign(username: string, revision: number, _index: number, _prefix: string, local: boolean): string {
    // Only the member whose client asked signs; the others have nobody to answer.
    if (!local) return '';
    return this.keys.sign({ username, revision, exp: Math.floor((this.now() + this.ttlMs) / 1000) });
  }

  genTokenPrefix(): string {
    return '';
  }

  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}
  observeIndex(): void {}
  close(): void {}
}

/**
 * etcd's decomposeOpts: `type,name=value,...`. Each option must have exactly one `=` and
 * appear once; otherwise InvalidAuthOpts.
 */
export function parseAuthTokenSpec(spec: string): { type: string; options: Map<string, string> } {
  const parts = spec.split(',');
  const type = parts[0]!;
  const options = new Map<string, string>();
  for (const part of parts.slice(1)) {
    const pair = part.split('=');
    if (pair.length !== 2) {
      throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: invalid token option ${JSON.stringify(part)}`);
    }
    if (options.has(pair[0]!)) {
      throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: duplicate token option ${JSON.stringify(pair[0])}`);
    }
    options.set(pair[0]!, pair[1]!);
  }
  return { type, options };
}

/** The provider `--auth-token` asks for; key files are read now. Throws AuthError on bad options. */
export function newTokenProvider(spec: string, simpleTtlSec: number): TokenProvider {
  const { type, options } = parseAuthTokenSpec(spec);
  if (type === 'simple') return new SimpleTokenProvider(simpleTtlSec);
  if (type !== 'jwt')
    throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: unknown token type ${JSON.stringify(type)}`);
  const method = options.get('sign-method') ?? '';
  if (!isJwtMethod(method)) throw new AuthError(AuthErrorCode.InvalidAuthMethod);
  let ttlMs = JWT_TTL_DEFAULT_MS;
  const ttl = options.get('ttl');
  if (ttl !== undefined && ttl !== '') {
    try {
      ttlMs = parseGoDuration(ttl);
    } catch (err) {
      throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: invalid JWT ttl ${JSON.stringify(ttl)}`, {
        cause: err,
      });
    }
    if (!(ttlMs > 0))
      throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: invalid JWT ttl ${JSON.stringify(ttl)}`);
  }
  const read = (name: string): Buffer | undefined => {
    const file = options.get(name);
    if (file === undefined || file === '') return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new AuthError(
        AuthErrorCode.InvalidAuthOpts,
        `auth: cannot read ${name} ${file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  };
  return new JwtTokenProvider(new JwtKeys(method, read('priv-key'), read('pub-key')), ttlMs);
}
