/** Runs the real etcdctl (v3 API) against one endpoint, with a bounded time. */
import { spawn } from 'node:child_process';

const ETCDCTL_TIMEOUT_MS_DEFAULT = 10_000;

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

/** `etcdctl --endpoints=<endpoint> <args...>` with ETCDCTL_API=3 and no other ETCDCTL_* settings. */
export function etcdctl(
  endpoint: string,
  args: readonly string[],
  options: EtcdctlOptions = {},
): Promise<EtcdctlResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('ETCDCTL_')) env[name] = value;
  env.ETCDCTL_API = '3';
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
