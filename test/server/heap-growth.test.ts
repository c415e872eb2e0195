/**
 * The server's heap growth policy: the growth set after a full collection, and when Node's own
 * setting wins. Its effect on memory is measured in bench/ (bench/README.md, "Memory").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HEADROOM_BYTES, heapGrowingPercent, MIN_GROWING_PERCENT } from '../../src/server/heap-growth.ts';
import { nodeFlagGiven } from '../../src/server/node-flags.ts';

const MiB = 1024 * 1024;

test('small heaps grow as V8 chooses, large ones by the headroom, never less than the minimum', () => {
  assert.equal(heapGrowingPercent(0), 0);
  assert.equal(heapGrowingPercent(10 * MiB), 0, 'a 10 MiB heap: V8 chooses');
  assert.equal(heapGrowingPercent(HEADROOM_BYTES / 3 + MiB), 290, 'just under V8 choosing: the headroom in percent');
  assert.equal(heapGrowingPercent(HEADROOM_BYTES), 100);
  assert.equal(heapGrowingPercent(200 * MiB), 40, '64/200 = 32%, rounded up to a step of 10');
  assert.equal(heapGrowingPercent(320 * MiB), MIN_GROWING_PERCENT);
  assert.equal(heapGrowingPercent(4096 * MiB), MIN_GROWING_PERCENT);
  for (let live = MiB; live < 2048 * MiB; live += 7 * MiB) {
    const percent = heapGrowingPercent(live);
    if (percent === 0) continue;
    assert.ok(percent >= MIN_GROWING_PERCENT && percent % 10 === 0, `${percent}% for ${live}`);
    assert.ok((live * percent) / 100 >= Math.min(HEADROOM_BYTES, live * 3) - 1, `headroom for ${live}`);
  }
});

test("Node's own --heap-growing-percent wins, from the command line or NODE_OPTIONS, in either spelling", () => {
  const given = (execArgv: string[], nodeOptions: string | undefined) =>
    nodeFlagGiven('--heap-growing-percent', execArgv, nodeOptions);
  assert.equal(given([], undefined), false);
  assert.equal(given(['--max-old-space-size=4096'], '--enable-source-maps'), false);
  assert.equal(given(['--heap-growing-percent=50'], undefined), true);
  assert.equal(given([], '--trace-gc --heap_growing_percent=5'), true);
  assert.equal(given(['--heap-growing-percent'], ''), true);
  assert.equal(given(['--heap-growing-percentage=1'], ''), false);
});

test('a process that follows its full collections keeps working through them and stops cleanly', () => {
  const module = fileURLToPath(new URL('../../src/server/heap-growth.ts', import.meta.url));
  const script = `
    import { controlHeapGrowth } from ${JSON.stringify(module)};
    const stop = controlHeapGrowth();
    const live = [];
    let n = 0;
    const step = () => {
      for (let i = 0; i < 200_000; i++) live.push({ i, key: 'key-' + i });
      globalThis.gc();
      if (++n < 6) setImmediate(step);
      else { stop(); console.log(live.length); }
    };
    step();
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1200000');
});
