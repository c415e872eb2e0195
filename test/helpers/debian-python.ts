/**
 * Debian's python and the client packages the compatibility tests drive with it
 * (python3-etcd3gw, python3-etcd3): a test installs the package it needs when it is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { aptInstall } from './apt.ts';

/** Debian's python, where the python3-* packages install. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const APT_TIMEOUT_MS = 300_000;

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
  aptInstall([debianPackage], APT_TIMEOUT_MS);
  if (!canImport(module)) throw new Error(`${debianPackage} is not importable after apt-get install`);
}
