/**
 * Password hashes as etcd stores them: bcrypt (`$2a$<cost>$...`) with `--bcrypt-cost`. bcryptjs
 * is pure JavaScript and works in chunks, so a hash never blocks the event loop for long; the
 * number of hashes and checks running and waiting is bounded, since each costs tens of
 * milliseconds of CPU at the default cost.
 */
import bcrypt from 'bcryptjs';
import { AuthError, AuthErrorCode } from './errors.ts';

export const BCRYPT_COST_MIN = 4;
export const BCRYPT_COST_MAX = 31;
export const BCRYPT_COST_DEFAULT = 10;
/** Hashes and checks computed at once. */
export const PASSWORD_WORKERS_MAX = 2;
/** Hashes and checks waiting for a worker, at most; more are refused at once. */
export const PASSWORD_QUEUE_MAX = 256;

export class PasswordHasher {
  readonly cost: number;
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(cost: number) {
    if (!Number.isInteger(cost) || cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX) {
      throw new RangeError(`bcrypt cost must be an integer in [${BCRYPT_COST_MIN}, ${BCRYPT_COST_MAX}], got ${cost}`);
    }
    this.cost = cost;
  }

  /** A bcrypt hash of `password`, in Go's `$2a$` form. */
  hash(password: string): Promise<string> {
    return this.run(async () => {
      const salt = await bcrypt.genSalt(this.cost);
      return toGoPrefix(await bcrypt.hash(password, salt));
    });
  }

  /** `hash`, blocking: only for a raft entry that carries a password instead of its hash. */
  hashSync(password: string): string {
    return toGoPrefix(bcrypt.hashSync(password, bcrypt.genSaltSync(this.cost)));
  }

  /** True when `password` matches `hash` (`$2a$`, `$2b$` or `$2y$`). */
  compare(password: string, hash: Uint8Array): Promise<boolean> {
    const text = Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('latin1');
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(text)) return Promise.resolve(false);
    return this.run(() => bcrypt.compare(password, `$2b$${text.slice(4)}`));
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= PASSWORD_WORKERS_MAX) {
      if (this.queue.length >= PASSWORD_QUEUE_MAX) throw new AuthError(AuthErrorCode.TooManyRequests);
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}

/**
 * `$2a$` for a `$2b$` hash: they hash alike (they differ only for passwords longer than 255
 * bytes, past bcrypt's 72-byte limit), and Go writes `$2a$`.
 */
function toGoPrefix(hash: string): string {
  return hash.startsWith('$2b$') ? `$2a$${hash.slice(4)}` : hash;
}
