/** What the CLI reads and writes: output streams, standard input, the environment, signals. */

export interface Output {
  write(chunk: string | Uint8Array): void;
}

/** Standard input read whole or line by line. */
export class Input {
  private readonly source: AsyncIterable<Buffer | string> | undefined;
  /** Made on the first read, so input that is never read is never opened. */
  private iterator: AsyncIterator<Buffer | string> | undefined = undefined;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  /** `source`: the chunks of standard input (undefined: empty input). */
  constructor(source: AsyncIterable<Buffer | string> | undefined) {
    this.source = source;
    if (source === undefined) this.ended = true;
  }

  static fromText(text: string): Input {
    return new Input(
      (async function* () {
        yield Buffer.from(text);
      })(),
    );
  }

  private async fill(): Promise<boolean> {
    if (this.ended || this.source === undefined) return false;
    this.iterator ??= this.source[Symbol.asyncIterator]();
    const next = await this.iterator.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return true;
  }

  /** Everything left. */
  async readAll(): Promise<Buffer> {
    while (await this.fill());
    const out = this.pending;
    this.pending = Buffer.alloc(0);
    return out;
  }

  /** The next line with its `\n`; the last unterminated piece as is; undefined at the end. */
  async readLine(): Promise<string | undefined> {
    for (;;) {
      const nl = this.pending.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.pending.subarray(0, nl + 1).toString('utf8');
        this.pending = this.pending.subarray(nl + 1);
        return line;
      }
      if (!(await this.fill())) {
        if (this.pending.length === 0) return undefined;
        const rest = this.pending.toString('utf8');
        this.pending = Buffer.alloc(0);
        return rest;
      }
    }
  }

  /** Whether more input may come (false once the end was seen and nothing is left). */
  get exhausted(): boolean {
    return this.ended && this.pending.length === 0;
  }
}

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: Input;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGINT or SIGTERM. */
  readonly interrupted: AbortSignal;
}
