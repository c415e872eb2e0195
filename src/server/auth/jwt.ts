/**
 * JSON Web Tokens as etcd's `--auth-token jwt,...` makes and checks them (jwt-go): a header
 * `{"alg":"RS256","typ":"JWT"}`, claims `{"exp":<unix s>,"revision":<auth revision>,"username":...}`,
 * signed with node:crypto. Methods: HS256/384/512 (the priv-key file's bytes are the secret),
 * RS256/384/512, PS256/384/512, ES256/384/512 (raw r||s signatures), EdDSA.
 */
import {
  constants,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { AuthError, AuthErrorCode } from './errors.ts';

export const JwtMethods = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type JwtMethod = (typeof JwtMethods)[number];

/** A token longer than this is not even parsed. */
export const JWT_MAX_BYTES = 16 * 1024;

const ES_CURVES: Readonly<Record<string, string>> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

export interface JwtClaims {
  username: string;
  revision: number;
  /** Expiry, unix seconds. */
  exp: number;
}

function hashOf(method: JwtMethod): string {
  return `sha${method.slice(2)}`;
}

function family(method: JwtMethod): 'HS' | 'RS' | 'PS' | 'ES' | 'Ed' {
  return method.slice(0, 2) as 'HS' | 'RS' | 'PS' | 'ES' | 'Ed';
}

export function isJwtMethod(name: string): name is JwtMethod {
  return (JwtMethods as readonly string[]).includes(name);
}

/** Keys for one signing method: a private key (or HMAC secret) signs; a public key only verifies. */
export class JwtKeys {
  readonly method: JwtMethod;
  private readonly secret: Buffer | undefined;
  private readonly privateKey: KeyObject | undefined;
  private readonly publicKey: KeyObject | undefined;

  /**
   * `privatePem` and `publicPem` are file contents. For HS*, the private key file is the secret.
   * Throws etcd's MissingKey when there is nothing to verify with, KeyMismatch when the two
   * keys are not a pair, and InvalidAuthOpts for keys of the wrong type or curve.
   */
  constructor(method: JwtMethod, privatePem: Buffer | undefined, publicPem: Buffer | undefined) {
    this.method = method;
    if (family(method) === 'HS') {
      if (privatePem === undefined || privatePem.length === 0) throw new AuthError(AuthErrorCode.MissingKey);
      this.secret = Buffer.from(privatePem);
      this.privateKey = undefined;
      this.publicKey = undefined;
      return;
    }
    this.secret = undefined;
    let priv: KeyObject | undefined;
    let pub: KeyObject | undefined;
    try {
      if (privatePem !== undefined && privatePem.length > 0) priv = createPrivateKey(privatePem);
      if (publicPem !== undefined && publicPem.length > 0) pub = createPublicKey(publicPem);
    } catch (err) {
      throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: cannot parse the JWT key: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (priv === undefined && pub === undefined) throw new AuthError(AuthErrorCode.MissingKey);
    const derivedPub = priv === undefined ? pub! : createPublicKey(priv);
    if (pub !== undefined && priv !== undefined) {
      const a = derivedPub.export({ format: 'der', type: 'spki' });
      const b = pub.export({ format: 'der', type: 'spki' });
      if (!a.equals(b)) throw new AuthError(AuthErrorCode.KeyMismatch);
    }
    checkKeyType(method, derivedPub);
    this.privateKey = priv;
    this.publicKey = derivedPub;
  }

  /** Only a public key: tokens can be checked, not made. */
  get verifyOnly(): boolean {
    return this.secret === undefined && this.privateKey === undefined;
  }

  sign(claims: JwtClaims): string {
    if (this.verifyOnly) throw new AuthError(AuthErrorCode.VerifyOnly);
    const header = base64url(Buffer.from(JSON.stringify({ alg: this.method, typ: 'JWT' })));
    // encoding/json of a map: keys in sorted order.
    const body = base64url(
      Buffer.from(
        `{"exp":${Math.trunc(claims.exp)},"revision":${Math.trunc(claims.revision)},"username":${JSON.stringify(claims.username)}}`,
      ),
    );
    const input = `${header}.${body}`;
    return `${input}.${base64url(this.signature(Buffer.from(input)))}`;
  }

  private signature(data: Buffer): Buffer {
    const m = this.method;
    switch (family(m)) {
      case 'HS':
        return createHmac(hashOf(m), this.secret!).update(data).digest();
      case 'RS':
        return sign(hashOf(m), data, this.privateKey!);
      case 'PS':
        return sign(hashOf(m), data, {
          key: this.privateKey!,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        });
      case 'ES':
        return sign(hashOf(m), data, { key: this.privateKey!, dsaEncoding: 'ieee-p1363' });
      case 'Ed':
        return sign(null, data, this.privateKey!);
    }
  }

  private check(data: Buffer, sig: Buffer): boolean {
    const m = this.method;
    switch (family(m)) {
      case 'HS': {
        const want = createHmac(hashOf(m), this.secret!).update(data).digest();
        return want.length === sig.length && timingSafeEqual(want, sig);
      }
      case 'RS':
        return verify(hashOf(m), data, this.publicKey!, sig);
      case 'PS':
        return verify(
          hashOf(m),
          data,
          {
            key: this.publicKey!,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_AUTO,
          },
          sig,
        );
      case 'ES':
        return verify(hashOf(m), data, { key: this.publicKey!, dsaEncoding: 'ieee-p1363' }, sig);
      case 'Ed':
        return verify(null, data, this.publicKey!, sig);
    }
  }

  /**
   * The claims of a valid token: well formed, signed with this method and key, not expired
   * (nor used before `nbf`/`iat`), with a string `username` and a numeric `revision`.
   * Anything else is undefined.
   */
  verify(token: string, nowMs: number): JwtClaims | undefined {
    if (token.length > JWT_MAX_BYTES) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [h, p, s] = parts as [string, string, string];
    const header = parseJsonObject(h);
    const claims = parseJsonObject(p);
    if (header === undefined || claims === undefined) return undefined;
    if (header.alg !== this.method) return undefined;
    const sig = fromBase64url(s);
    if (sig === undefined) return undefined;
    let ok: boolean;
    try {
      ok = this.check(Buffer.from(`${h}.${p}`), sig);
    } catch {
      return undefined;
    }
    if (!ok) return undefined;
    const nowSec = nowMs / 1000;
    const exp = claims.exp;
    if (exp !== undefined && (typeof exp !== 'number' || nowSec > exp)) return undefined;
    for (const name of ['nbf', 'iat'] as const) {
      const v = claims[name];
      if (v !== undefined && (typeof v !== 'number' || nowSec < v)) return undefined;
    }
    const { username, revision } = claims;
    if (typeof username !== 'string' || typeof revision !== 'number' || !Number.isSafeInteger(revision)) {
      return undefined;
    }
    if (revision < 0) return undefined;
    return { username, revision, exp: typeof exp === 'number' ? exp : 0 };
  }
}

function checkKeyType(method: JwtMethod, key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const f = family(method);
  const want = f === 'RS' || f === 'PS' ? ['rsa', 'rsa-pss'] : f === 'ES' ? ['ec'] : ['ed25519', 'ed448'];
  if (type === undefined || !want.includes(type)) {
    throw new AuthError(AuthErrorCode.InvalidAuthOpts, `auth: a ${type ?? 'secret'} key cannot sign ${method} tokens`);
  }
  if (f === 'ES' && key.asymmetricKeyDetails?.namedCurve !== ES_CURVES[method]) {
    throw new AuthError(
      AuthErrorCode.InvalidAuthOpts,
      `auth: ${method} needs a ${ES_CURVES[method]} key, not ${key.asymmetricKeyDetails?.namedCurve}`,
    );
  }
}

function base64url(b: Buffer): string {
  return b.toString('base64url');
}

function fromBase64url(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  return Buffer.from(s, 'base64url');
}

function parseJsonObject(part: string): Record<string, unknown> | undefined {
  const bytes = fromBase64url(part);
  if (bytes === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
