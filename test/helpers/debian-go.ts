/**
 * Debian's Go and etcd's Go client library (golang-go, golang-etcd-server-dev), for the
 * compatibility test that drives clientv3 (test/compat/go-clientv3.test.ts): a test installs the
 * packages when they are missing and builds its Go program from Debian's library sources in
 * GOPATH mode, without the network (no module proxy), into a cache under node_modules/.cache.
 * A build is reused for as long as the program's .go files and the Go toolchain are unchanged.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './apt.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'etcd-ts-go');
/** Debian's golang-go puts `go` here; a `go` elsewhere on PATH is the fallback. */
export const GO = existsSync('/usr/bin/go') ? '/usr/bin/go' : 'go';
/** Where golang-*-dev packages install their sources (GOPATH mode). */
const DEBIAN_GOPATH = '/usr/share/gocode';
const CLIENTV3_DIR = join(DEBIAN_GOPATH, 'src', 'go.etcd.io', 'etcd', 'clientv3');
const PACKAGES = ['golang-go', 'golang-etcd-server-dev'];
const BUILD_TIMEOUT_MS = 300_000;
const PROBE_TIMEOUT_MS = 10_000;

/** The toolchain's version line, or undefined when there is no usable `go`. */
function goVersion(): string | undefined {
  try {
    return execFileSync(GO, ['version'], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS }).trim();
  } catch {
    return undefined;
  }
}

/** Installs golang-go and golang-etcd-server-dev with apt-get unless both are there already. */
export function ensureGoClientv3(): void {
  if (goVersion() !== undefined && existsSync(CLIENTV3_DIR)) return;
  aptInstall(PACKAGES);
  if (goVersion() === undefined || !existsSync(CLIENTV3_DIR)) {
    throw new Error(`${PACKAGES.join(' ')} installed, but go or ${CLIENTV3_DIR} is still missing`);
  }
}

/**
 * Builds the Go program (package main) in `dir` and returns the binary's path. The binary is
 * named after a hash of the program's .go files and the toolchain's version, so an unchanged
 * program is not built again. The build runs in GOPATH mode on a private copy of `dir` followed
 * by Debian's /usr/share/gocode, with the module proxy off and a bounded time.
 */
export function buildGoProgram(dir: string): string {
  const version = goVersion();
  if (version === undefined) throw new Error(`no usable go (${GO}): call ensureGoClientv3() first`);
  const sources = readdirSync(dir)
    .filter((name) => name.endsWith('.go') && !name.endsWith('_test.go'))
    .sort();
  if (sources.length === 0) throw new Error(`no .go files in ${dir}`);
  const hash = createHash('sha256').update(version);
  for (const name of sources) hash.update(`\0${name}\0`).update(readFileSync(join(dir, name)));
  const name = basename(dir);
  const binary = join(CACHE_DIR, 'bin', `${name}-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return binary;

  mkdirSync(join(CACHE_DIR, 'bin'), { recursive: true });
  const gopath = join(CACHE_DIR, `gopath-${process.pid}`);
  const pkg = join(gopath, 'src', 'etcd-ts', name);
  rmSync(gopath, { recursive: true, force: true });
  mkdirSync(pkg, { recursive: true });
  for (const source of sources) copyFileSync(join(dir, source), join(pkg, source));
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    execFileSync(GO, ['build', '-o', partial, '.'], {
      cwd: pkg,
      timeout: BUILD_TIMEOUT_MS,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        GO111MODULE: 'off',
        GOPATH: `${gopath}:${DEBIAN_GOPATH}`,
        GOPROXY: 'off',
        GOSUMDB: 'off',
        GOFLAGS: '',
        GOTOOLCHAIN: 'local',
        GOCACHE: join(CACHE_DIR, 'gocache'),
      },
    });
    // Another test process may have built the same binary meanwhile: renaming over it is fine.
    renameSync(partial, binary);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8') ?? '';
    throw new Error(`go build of ${dir} failed: ${(err as Error).message}\n${stderr}`);
  } finally {
    rmSync(partial, { force: true });
    rmSync(gopath, { recursive: true, force: true });
  }
  // Builds of earlier versions of the program are of no further use.
  for (const old of readdirSync(join(CACHE_DIR, 'bin'))) {
    if (old.startsWith(`${name}-`) && join(CACHE_DIR, 'bin', old) !== binary && !old.endsWith('.tmp')) {
      rmSync(join(CACHE_DIR, 'bin', old), { force: true });
    }
  }
  return binary;
}
