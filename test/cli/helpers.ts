/**
 * Running etcdctl-ts (in-process through `run`, or as a process through bin/etcdctl-ts.ts) and
 * the real etcdctl with the same arguments, standard input and ETCDCTL_* variables; long-running
 * commands (watch, lock, elect, keep-alive) are stopped with SIGINT once their output satisfies
 * a condition. Every process is bounded in time and killed at the end.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Input } from '../../src/cli/io.ts';
import { run } from '../../src/cli/main.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUN_TIMEOUT_MS_DEFAULT = 15_000;

export interface CliResult {
  /** Exit code; for a process ended by a signal, 128 + the signal number. */
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface CliRunOptions {
  /** Written to standard input, which is then closed. */
  input?: string;
  /** ETCDCTL_* (and other) variables; the caller's ETCDCTL_* variables are never passed on. */
  env?: Record<string, string>;
  /** Stop (SIGINT) once the output so far satisfies this. */
  stopWhen?: (stdout: string, stderr: string) => boolean;
  /** A signal to stop the command from outside (SIGINT). */
  stop?: AbortSignal;
  /** Called with each chunk of standard output as it comes. */
  onStdout?: (text: string) => void;
  timeoutMs?: number;
}

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('ETCDCTL_')) env[name] = value;
  }
  return { ...env, ...extra };
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** The real etcdctl (API 3) with exactly `args`. */
export function etcdctl(args: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
  return runProcess('etcdctl', args, { ...options, env: { ETCDCTL_API: '3', ...options.env } });
}

/** etcdctl-ts as a process (`node --import tsx bin/etcdctl-ts.ts`). */
export function etcdctlTsProcess(args: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
  return runProcess(process.execPath, ['--import', 'tsx', `${REPO_ROOT}bin/etcdctl-ts.ts`, ...args], options);
}

function runProcess(file: string, args: readonly string[], options: CliRunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: cleanEnv(options.env), cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      child.kill('SIGINT');
    };
    const check = () => {
      if (options.stopWhen?.(Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8'))) stop();
    };
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      options.onStdout?.(chunk.toString('utf8'));
      check();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err.push(chunk);
      check();
    });
    options.stop?.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? RUN_TIMEOUT_MS_DEFAULT);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const exit = code ?? 128 + (SIGNAL_NUMBERS[signal ?? ''] ?? 0);
      resolve({ code: exit, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** etcdctl-ts in this process, through `run`. */
export async function etcdctlTs(args: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const interrupted = new AbortController();
  const check = () => {
    if (options.stopWhen?.(Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8'))) {
      interrupted.abort();
    }
  };
  const sink = (into: Buffer[], onText?: (text: string) => void) => ({
    write(chunk: string | Uint8Array) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
      into.push(b);
      onText?.(b.toString('utf8'));
      queueMicrotask(check);
    },
  });
  options.stop?.addEventListener('abort', () => interrupted.abort(), { once: true });
  const timer = setTimeout(() => interrupted.abort(), options.timeoutMs ?? RUN_TIMEOUT_MS_DEFAULT);
  try {
    const code = await run(args, {
      stdout: sink(out, options.onStdout),
      stderr: sink(err),
      stdin: Input.fromText(options.input ?? ''),
      env: { ...options.env },
      interrupted: interrupted.signal,
    });
    return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  } finally {
    clearTimeout(timer);
  }
}
