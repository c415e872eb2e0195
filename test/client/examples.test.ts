/**
 * The examples run as documented, each with one command, against a real etcd: the walkthrough
 * finishes on its own; a discoverer sees a registrar appear and leave; both stop on SIGINT.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Member, MemberKind } from '../helpers/member.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE_TIMEOUT_MS = 20_000;

let member: Member;
const children: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the output matches. */
  waitFor: (pattern: RegExp) => Promise<void>;
  exited: Promise<number | null>;
}

function runExample(name: string, args: readonly string[] = []): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${name}`, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ETCD_ENDPOINTS: member.endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  const waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...waiters]) if (w.pattern.test(out)) w.resolve();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), EXAMPLE_TIMEOUT_MS);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => out,
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        if (pattern.test(out)) return resolve();
        waiters.push({ pattern, resolve });
        void exited.then(() => reject(new Error(`${name} exited without ${pattern}:\n${out}`)));
      }),
  };
}

describe('examples', { timeout: 60_000 }, () => {
  before(async () => {
    member = await Member.start({ kind: MemberKind.ETCD, name: 'examples' });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await member?.stop();
  });

  test('the walkthrough runs to the end', async () => {
    const walk = runExample('walkthrough.ts');
    assert.equal(await walk.exited, 0, walk.output());
    const out = walk.output();
    assert.match(out, /^get greeting: hello$/m);
    assert.match(out, /^compare-and-swap succeeded: true$/m);
    assert.match(out, /^watch: put session = alive$/m);
    assert.match(out, /^watch: put greeting = bye$/m);
    assert.match(out, /^watch: delete session$/m);
    assert.match(out, /^session after revoke: \(gone\)$/m);
    assert.match(out, /^done$/m);
  });

  test('a discoverer sees a registrar come and go; both stop on SIGINT', async () => {
    const discoverer = runExample('service-discoverer.ts', ['billing']);
    await discoverer.waitFor(/billing: 0 instance\(s\)/);
    const registrar = runExample('service-registrar.ts', ['billing', 'node-7', 'http://10.1.2.3:80']);
    await registrar.waitFor(/registered \/services\/billing\/node-7/);
    await discoverer.waitFor(/added node-7 http:\/\/10\.1\.2\.3:80/);
    await discoverer.waitFor(/next pick: node-7/);
    registrar.child.kill('SIGINT');
    assert.equal(await registrar.exited, 0, registrar.output());
    assert.match(registrar.output(), /deregistered \/services\/billing\/node-7/);
    await discoverer.waitFor(/removed node-7/);
    discoverer.child.kill('SIGINT');
    assert.equal(await discoverer.exited, 0, discoverer.output());
  });
});
