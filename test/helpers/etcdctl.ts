/** Runs the real etcdctl (v3 API) against one endpoint, with a bounded time. */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

const ETCDCTL_TIMEOUT_MS_DEFAULT = 10_000;
/** How long EtcdctlProcess.waitFor waits by default. */
const WAIT_MS_DEFAULT = 10_000;
/** How long EtcdctlProcess.stop gives etcdctl after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3_000;

export interface EtcdctlResult {
  /** Exit code; -1 when the process was killed after `timeoutMs`. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface EtcdctlOptions {
  /** Written to etcdctl's stdin, then stdin is closed (for the interactive `txn`). */
  input?: string;
  timeoutMs?: number;
}

/** This process's environment with ETCDCTL_API=3 and no other ETCDCTL_* settings. */
export function etcdctlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('ETCDCTL_')) env[name] = value;
  env.ETCDCTL_API = '3';
  return env;
}

/** `etcdctl --endpoints=<endpoint> <args...>` with ETCDCTL_API=3 and no other ETCDCTL_* settings. */
export function etcdctl(
  endpoint: string,
  args: readonly string[],
  options: EtcdctlOptions = {},
): Promise<EtcdctlResult> {
  const env = etcdctlEnv();
  const timeoutMs = options.timeoutMs ?? ETCDCTL_TIMEOUT_MS_DEFAULT;
  return new Promise((resolve, reject) => {
    const child = spawn('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=3s', ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? -1 : (code ?? -1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** One long-running etcdctl (watch, lock, elect), read while it runs. */
export class EtcdctlProcess {
  /** Those still running, so that a suite can stop what it started (stopAll). */
  static readonly #running = new Set<EtcdctlProcess>();

  /** Stops every etcdctl started here that is still running. */
  static async stopAll(): Promise<void> {
    await Promise.all([...EtcdctlProcess.#running].map((p) => p.stop()));
  }

  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(endpoint: string, args: readonly string[]) {
    this.child = spawn('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=3s', ...args], {
      env: etcdctlEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    EtcdctlProcess.#running.add(this);
    void this.exited.then(() => EtcdctlProcess.#running.delete(this));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(done: (stdout: string) => boolean, what: string, timeoutMs = WAIT_MS_DEFAULT): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.stdout)) {
      if (Date.now() > deadline || (!this.alive && !done(this.stdout))) {
        throw new Error(`etcdctl ${what}: not within ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await sleep(20);
    }
  }

  /** Stops it (SIGTERM, then SIGKILL) and returns its exit code. */
  async stop(): Promise<number | null> {
    if (this.alive) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
