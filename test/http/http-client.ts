/**
 * Plain HTTP/1.1 requests for the HTTP tests (what curl and the grpc-gateway clients send), and
 * the normalisation of gateway JSON bodies before two servers' answers are compared.
 */
import { request as httpRequest } from 'node:http';

export const REQUEST_TIMEOUT_MS = 10_000;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/** One request; the whole answer. `body` null sends none. */
export function send(url: string, body: string | null, options: RequestOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: options.method ?? (body === null ? 'GET' : 'POST'),
        headers: options.headers,
        timeout: options.timeoutMs ?? REQUEST_TIMEOUT_MS,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within the timeout`)));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

export function post(base: string, path: string, body: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  return send(`${base}${path}`, body, { method: 'POST', ...options });
}

/**
 * A streaming POST (watch, keep-alive): the answer's status, headers and body lines as they
 * come. `close()` drops the connection.
 */
export class LineStream {
  readonly lines: string[] = [];
  status = 0;
  headers: Readonly<Record<string, string | string[] | undefined>> = {};
  ended = false;
  #buffered = '';
  #waiters: (() => void)[] = [];
  readonly #req: ReturnType<typeof httpRequest>;

  constructor(url: string, body: string) {
    this.#req = httpRequest(url, { method: 'POST', agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        this.#buffered += chunk;
        for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
          this.lines.push(this.#buffered.slice(0, nl));
          this.#buffered = this.#buffered.slice(nl + 1);
        }
        this.#wake();
      });
      res.on('end', () => {
        if (this.#buffered !== '') this.lines.push(this.#buffered);
        this.#buffered = '';
        this.ended = true;
        this.#wake();
      });
      res.on('error', () => {});
    });
    this.#req.on('error', () => {
      this.ended = true;
      this.#wake();
    });
    this.#req.end(body);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `count` lines have come (or the body ended); fails after `timeoutMs`. */
  async waitLines(count: number, timeoutMs = REQUEST_TIMEOUT_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < count && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.lines.length} of ${count} lines within ${timeoutMs} ms: ${this.lines}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.lines.slice(0, count);
  }

  /** Waits for the end of the body. */
  async waitEnd(timeoutMs = REQUEST_TIMEOUT_MS): Promise<string[]> {
    await this.waitLines(Number.POSITIVE_INFINITY, timeoutMs).catch((err: unknown) => {
      if (!this.ended) throw err;
    });
    return this.lines;
  }

  close(): void {
    this.#req.destroy();
  }
}

/** Response header fields that identify a cluster or count its elections. */
const IDENTITY_FIELDS = ['cluster_id', 'member_id', 'raft_term'] as const;

/**
 * A gateway JSON body with the header fields that differ between two clusters removed (at any
 * depth: nested txn headers carry only a revision anyway), plus the named fields anywhere.
 */
export function normalize(text: string, dropFields: readonly string[] = []): unknown {
  const value: unknown = JSON.parse(text);
  const drop = new Set(dropFields);
  const walk = (v: unknown, key: string | null): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, null));
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, inner] of Object.entries(v)) {
      if (drop.has(k)) continue;
      if (key === 'header' && (IDENTITY_FIELDS as readonly string[]).includes(k)) continue;
      out[k] = walk(inner, k);
    }
    return out;
  };
  return walk(value, null);
}

export function b64(text: string | Buffer): string {
  return Buffer.from(text).toString('base64');
}
