/**
 * etcdctl-ts starts with what its command needs: the commands that talk to a server load the
 * client, the API's codecs and the CLI, not the storage engine, raft or the server's
 * configuration (about half of the start-up time of a `put`). The commands that work on files
 * (`snapshot status`, `snapshot restore`, `defrag --data-dir`) load the storage engine when
 * they run; this test also checks that the trace sees such a load.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { etcdctlTsProcess } from './helpers.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TRACE_HOOK = fileURLToPath(new URL('./module-trace.mjs', import.meta.url));

/** Where a loaded module comes from: `src/<dir>`, `bin`, a package name, or `node:`. */
function origin(url: string): string {
  if (url.startsWith('node:')) return 'node:';
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (pkg !== null) return pkg[1]!;
  if (!path.startsWith(REPO_ROOT)) return path;
  const parts = path.slice(REPO_ROOT.length).split('/');
  return parts[0] === 'src' && parts.length > 2 ? `src/${parts[1]}` : parts.slice(0, 2).join('/');
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'etcdctl-ts-startup-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function modulesLoadedBy(args: string[]): Promise<{ code: number; stderr: string; origins: Set<string> }> {
  const traceFile = join(dir, `trace-${args.join('-').replace(/[^a-z]/g, '')}`);
  const r = await etcdctlTsProcess(args, {
    env: { NODE_OPTIONS: `--import=${TRACE_HOOK}`, MODULE_TRACE_FILE: traceFile },
  });
  const urls = (await readFile(traceFile, 'utf8')).split('\n').filter((u) => u !== '');
  return { code: r.code, stderr: r.stderr.toString('utf8'), origins: new Set(urls.map(origin)) };
}

const ENGINE = ['src/storage', 'src/raft', 'src/transport', 'lmdb', 'yaml'];

test('a command that talks to a server does not load the storage engine, raft or the server configuration', async () => {
  // No server listens on port 1: the put fails after the client has been built and has tried.
  const put = await modulesLoadedBy(['--endpoints=127.0.0.1:1', '--dial-timeout=200ms', 'put', 'k', 'v']);
  assert.equal(put.code, 1, put.stderr);
  assert.ok(put.origins.has('src/client') && put.origins.has('src/cli'), [...put.origins].join(' '));
  for (const heavy of ENGINE) assert.ok(!put.origins.has(heavy), `put loaded ${heavy}`);
  const version = await modulesLoadedBy(['version']);
  assert.equal(version.code, 0, version.stderr);
  for (const heavy of ENGINE) assert.ok(!version.origins.has(heavy), `version loaded ${heavy}`);
});

test('snapshot status loads the storage engine when it runs', async () => {
  const status = await modulesLoadedBy(['snapshot', 'status', join(dir, 'missing.db')]);
  assert.equal(status.code, 1);
  assert.match(status.stderr, /no such file or directory/);
  assert.ok(status.origins.has('src/storage'), [...status.origins].join(' '));
});
