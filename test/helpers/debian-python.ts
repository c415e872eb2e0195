/**
 * Debian's python and the client packages the compatibility tests drive with it
 * (python3-etcd3gw, python3-etcd3): a test installs the package it needs when it is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's python, where the python3-* packages install. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function canImport(module: string): boolean {
  try {
    execFileSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** Installs `debianPackage` with apt-get unless `module` is importable already. */
export function ensurePythonModule(module: string, debianPackage: string): void {
  if (canImport(module)) return;
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const [command, ...args] = [...sudo, 'apt-get', 'install', '-y', '-qq', debianPackage];
  execFileSync(command!, args, {
    stdio: 'ignore',
    timeout: 300_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (!canImport(module)) throw new Error(`${debianPackage} is not importable after apt-get install`);
}
