// The applied index is committed in the same LMDB transaction as the data it covers: a child
// process writes data and index together, synchronously, and is killed with SIGKILL at random
// moments; after each kill the backend must hold exactly the data up to the stored index.
//
// Run as a child (ETCD_TS_BACKEND_CRASH_CHILD=<dir>) this file is the writer instead.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Backend, putConsistentIndex, readConsistentIndex } from '../../src/storage/backend/index.ts';

const CHILD_ENV = 'ETCD_TS_BACKEND_CRASH_CHILD';

function keyAt(i: number): Uint8Array {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigUint64(0, BigInt(i));
  return k;
}

function valueAt(i: number): Uint8Array {
  return new Uint8Array(Buffer.from(`value-${i}-`.repeat(1 + (i % 5))));
}

async function runWriter(dir: string): Promise<never> {
  // A small batch limit: one synchronous step below writes up to 24 operations, more than a
  // batch holds, and must still commit as one LMDB transaction.
  const be = Backend.open({ dir, batchIntervalMs: 1, batchLimit: 8 });
  let { index } = readConsistentIndex(be);
  process.stdout.write(`ready ${index}\n`);
  let reported = false;
  for (let step = 0; ; step++) {
    if (!reported && be.stats().commits >= 3) {
      // Progress is on disk: from now on the parent may kill at any moment.
      process.stdout.write('committed\n');
      reported = true;
    }
    const entries = 1 + (step % 8);
    for (let j = 0; j < entries; j++) {
      index++;
      be.put('key', keyAt(index), valueAt(index));
      putConsistentIndex(be, index, 1);
    }
    // Sometimes wait long enough for the previous commit to finish, so that the next step
    // starts with no batch in flight and its own batch fills up in the middle of the step.
    if (step % 4 === 0) await new Promise((resolve) => setTimeout(resolve, step % 16));
    else if (step % 4 === 1) await new Promise((resolve) => setImmediate(resolve));
    else await Promise.resolve();
  }
}

const childDir = process.env[CHILD_ENV];
if (childDir !== undefined) {
  await runWriter(childDir);
} else {
  test('SIGKILL between commits never separates the applied index from its data', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-backend-crash-'));
    const self = fileURLToPath(import.meta.url);
    let child: ChildProcess | null = null;
    try {
      let previous = 0;
      let seed = 7;
      for (let round = 0; round < 6; round++) {
        child = spawn(process.execPath, ['--import', 'tsx', self], {
          cwd: fileURLToPath(new URL('../..', import.meta.url)),
          env: { ...process.env, [CHILD_ENV]: dir },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const proc = child;
        const exited = new Promise<NodeJS.Signals | null>((resolve) =>
          proc.once('exit', (_code, signal) => resolve(signal)),
        );
        const startIndex = await new Promise<number>((resolve, reject) => {
          let out = '';
          proc.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            const m = /ready (\d+)\ncommitted\n/.exec(out);
            if (m) resolve(Number(m[1]));
          });
          proc.once('exit', () => reject(new Error(`writer exited before committing: ${out}`)));
        });
        assert.equal(startIndex, previous, 'the writer resumes from the stored index');
        seed = (seed * 48271) % 2147483647;
        await new Promise((resolve) => setTimeout(resolve, 50 + (seed % 250)));
        proc.kill('SIGKILL');
        assert.equal(await exited, 'SIGKILL');
        child = null;

        const be = Backend.open(dir);
        try {
          const { index } = readConsistentIndex(be);
          assert.ok(index > previous, `round ${round}: index ${index} did not advance past ${previous}`);
          const { keys, values } = be.range('key', new Uint8Array(0), null);
          assert.equal(keys.length, index, `round ${round}: ${keys.length} data entries for applied index ${index}`);
          for (let i = 0; i < keys.length; i++) {
            assert.equal(Buffer.compare(keys[i]!, keyAt(i + 1)), 0);
            assert.equal(Buffer.compare(values[i]!, valueAt(i + 1)), 0);
          }
          previous = index;
        } finally {
          await be.close();
        }
      }
    } finally {
      child?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
