import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataDirError, openDataDir, PRIVATE_DIR_MODE } from '../../src/server/datadir.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-datadir-'));
after(() => rmSync(root, { recursive: true, force: true }));

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

async function lockedError(promise: Promise<unknown>): Promise<DataDirError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DataDirError, String(err));
    return err;
  }
  return assert.fail('expected the data dir to be locked');
}

for (const lockMethod of ['socket', 'pidfile'] as const) {
  describe(`data dir (${lockMethod} lock)`, () => {
    test("creates etcd's layout with 0700 and locks it against a second opener until closed", async () => {
      const dir = join(root, `${lockMethod}-a`, 'nested', 'data');
      const first = await openDataDir(dir, { lockMethod });
      try {
        assert.equal(first.dataDir, dir);
        assert.equal(first.memberDir, join(dir, 'member'));
        assert.equal(first.walDir, join(dir, 'member', 'wal'));
        assert.equal(first.snapDir, join(dir, 'member', 'snap'));
        for (const p of [dir, first.memberDir, first.walDir, first.snapDir]) assert.equal(mode(p), PRIVATE_DIR_MODE, p);
        const err = await lockedError(openDataDir(dir, { lockMethod }));
        assert.equal(err.code, 'ERR_DATA_DIR_LOCKED');
        assert.equal(err.holderPid, process.pid);
        assert.match(err.message, new RegExp(`data dir ${dir} is in use by another process \\(pid ${process.pid}\\)`));
      } finally {
        await first.close();
      }
      const again = await openDataDir(dir, { lockMethod });
      await again.close();
      await again.close();
    });

    test('a lock held by another process is seen; its death frees the directory', async () => {
      const dir = join(root, `${lockMethod}-b`);
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '-e',
          `import('${new URL('../../src/server/datadir.ts', import.meta.url).href}').then(async (m) => {
             await m.openDataDir(${JSON.stringify(dir)}, { lockMethod: '${lockMethod}' });
             process.stdout.write('locked\\n');
             setInterval(() => {}, 1000);
           });`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (c: Buffer) => c.toString().includes('locked') && resolve());
          child.on('exit', () => reject(new Error('lock holder exited early')));
        });
        const err = await lockedError(openDataDir(dir, { lockMethod }));
        assert.equal(err.holderPid, child.pid);
      } finally {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('close', resolve));
      }
      // SIGKILL leaves no chance to clean up: the lock must not outlive the process.
      const reopened = await openDataDir(dir, { lockMethod });
      await reopened.close();
    });
  });
}

describe('data dir checks', () => {
  test('a stale pid file (dead pid) is replaced', async () => {
    const dir = join(root, 'stale');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A pid far above any pid_max is certainly not running.
    writeFileSync(join(dir, 'etcd-ts.lock'), '999999999 12345\n');
    const d = await openDataDir(dir, { lockMethod: 'pidfile' });
    assert.match(readFileSync(join(dir, 'etcd-ts.lock'), 'utf8'), new RegExp(`^${process.pid} `));
    await d.close();
  });

  test('a pid file whose pid is alive but started at another time is stale (pid reuse)', async () => {
    const dir = join(root, 'reused');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'etcd-ts.lock'), `${process.pid} 1\n`);
    const d = await openDataDir(dir, { lockMethod: 'pidfile' });
    await d.close();
  });

  test('an existing directory open to others is kept but warned about; a file in the way is an error', async () => {
    const dir = join(root, 'wide');
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    const d = await openDataDir(dir);
    try {
      assert.equal(mode(dir), 0o755);
      assert.equal(d.warnings.length, 1);
      assert.match(d.warnings[0]!, /permission is 0755\. The recommended permission is 0700/);
    } finally {
      await d.close();
    }
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(openDataDir(file), /exists and is not a directory|cannot create directory/);
    await assert.rejects(openDataDir(''), /--data-dir must not be empty/);
  });

  test('--wal-dir puts the WAL elsewhere', async () => {
    const dir = join(root, 'with-wal');
    const wal = join(root, 'wal-elsewhere');
    const d = await openDataDir(dir, { walDir: wal });
    try {
      assert.equal(d.walDir, wal);
      assert.equal(mode(wal), PRIVATE_DIR_MODE);
    } finally {
      await d.close();
    }
  });
});
