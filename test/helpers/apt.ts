/**
 * Debian packages a test needs: installs them with apt-get (through sudo unless root), refreshing
 * the package lists once if the first attempt fails, as on a fresh machine with stale lists.
 */
import { execFileSync } from 'node:child_process';

const DEFAULT_TIMEOUT_MS = 600_000;

export function aptInstall(packages: readonly string[], timeoutMs = DEFAULT_TIMEOUT_MS): void {
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (...args: string[]) => {
    const [command, ...rest] = [...sudo, 'apt-get', ...args];
    execFileSync(command!, rest, { stdio: 'ignore', timeout: timeoutMs, env });
  };
  try {
    apt('install', '-y', '-qq', ...packages);
  } catch {
    apt('update', '-qq');
    apt('install', '-y', '-qq', ...packages);
  }
}
