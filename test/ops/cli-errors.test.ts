/**
 * Bad input to `snapshot`, `alarm` and `defrag`: etcdctl-ts answers with etcdctl's message and
 * exit code, and a refused restore leaves no directory behind.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { cli, tempDir } from './helpers.ts';

describe('operations commands refuse bad input as etcdctl does', () => {
  const dir = tempDir('cli-errors');
  const junk = `${dir}/junk.db`;
  writeFileSync(junk, Buffer.alloc(3 * 4096, 0x5a));
  const short = `${dir}/short.db`;
  writeFileSync(short, Buffer.alloc(5000, 0x5a));
  const tiny = `${dir}/tiny.db`;
  writeFileSync(tiny, Buffer.alloc(100));
  const existing = `${dir}/existing`;
  mkdirSync(existing);
  // Each tool restores into a directory of its own where the path is not in the message.
  const cases: [string, (tool: string) => string[]][] = [
    ['status of a missing file', () => ['snapshot', 'status', `${dir}/missing.db`]],
    ['status of a file that is not a database', () => ['snapshot', 'status', junk]],
    ['status of a file shorter than two pages', () => ['snapshot', 'status', short]],
    ['status of a file shorter than a page', () => ['snapshot', 'status', tiny]],
    ['status without a file', () => ['snapshot', 'status']],
    ['save without a file', () => ['snapshot', 'save']],
    ['save from two endpoints', (t) => ['--endpoints=127.0.0.1:1,127.0.0.1:2', 'snapshot', 'save', `${dir}/${t}.db`]],
    ['restore of a missing file', (t) => ['snapshot', 'restore', `${dir}/missing.db`, `--data-dir=${dir}/${t}-1`]],
    ['restore into an existing dir', () => ['snapshot', 'restore', junk, `--data-dir=${existing}`]],
    [
      'restore with a name not in the cluster',
      (t) => ['snapshot', 'restore', junk, `--data-dir=${dir}/${t}-2`, '--name=nope'],
    ],
    ['restore of a file without its hash', (t) => ['snapshot', 'restore', junk, `--data-dir=${dir}/${t}-3`]],
    ['alarm list with an argument', () => ['alarm', 'list', 'extra']],
    ['alarm disarm with an argument', () => ['alarm', 'disarm', 'extra']],
  ];
  for (const [name, args] of cases) {
    test(name, async () => {
      const [want, got] = await Promise.all([cli('etcdctl', args('etcdctl')), cli('etcdctl-ts', args('etcdctl-ts'))]);
      const lastLine = (s: string) =>
        s
          .split('\n')
          .filter((l) => l.startsWith('Error:'))
          .at(-1);
      assert.equal(got.code, want.code, got.stderr);
      assert.equal(lastLine(got.stderr), lastLine(want.stderr));
      for (const n of [1, 2, 3]) assert.equal(existsSync(`${dir}/etcdctl-ts-${n}`), false, 'no directory left');
    });
  }

  test('a snapshot that is not a database: restore fails and leaves nothing (etcdctl panics here)', async () => {
    const target = `${dir}/r4`;
    const got = await cli('etcdctl-ts', ['snapshot', 'restore', junk, `--data-dir=${target}`, '--skip-hash-check']);
    assert.equal(got.code, 1);
    assert.match(got.stderr, /^Error: invalid database$/m);
    assert.equal(existsSync(target), false);
  });
});
