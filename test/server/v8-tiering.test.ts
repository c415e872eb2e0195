/**
 * The server's V8 tiering thresholds: which flags it sets on which runtime, that an operator's
 * own flag wins, and that setting them makes V8 optimize a hot function sooner in a real process.
 * What they are worth is measured in bench/ (bench/README.md, "Sooner Maglev").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TIERING_FLAGS, tieringFlags } from '../../src/server/v8-tiering.ts';

const ALL = TIERING_FLAGS.map(([flag, value]) => `${flag}=${value}`);

test('both thresholds are lowered on a V8 with Maglev, none on an older one', () => {
  assert.deepEqual(ALL, ['--invocation-count-for-maglev=100', '--minimum-invocations-after-ic-update=100']);
  assert.deepEqual(tieringFlags('14.6.202.33-node.32', [], undefined), ALL);
  assert.deepEqual(tieringFlags('12.4.254.21-node.33', [], ''), ALL);
  assert.deepEqual(tieringFlags('11.3.244.8-node.30', [], undefined), [], "Node 20's V8: Maglev off, nothing set");
});

test('a threshold given to Node wins, in either spelling; the other is still set', () => {
  assert.deepEqual(tieringFlags('14.6', ['--invocation_count_for_maglev=1000'], undefined), [ALL[1]]);
  assert.deepEqual(tieringFlags('14.6', ['--max-old-space-size=4096'], '--minimum-invocations-after-ic-update=7'), [
    ALL[0],
  ]);
  assert.deepEqual(
    tieringFlags('14.6', ['--invocation-count-for-maglev=5', '--minimum-invocations-after-ic-update=5'], undefined),
    [],
  );
});

/** Runs a function 200 times (a turn of the event loop apart) under --trace-opt; returns stdout. */
function traceHotFunction(apply: boolean): { set: string[]; trace: string } {
  const module = fileURLToPath(new URL('../../src/server/v8-tiering.ts', import.meta.url));
  const script = `
    import { applyTiering } from ${JSON.stringify(module)};
    const set = ${apply ? 'applyTiering()' : '[]'};
    function hotOne(o) { return o.a + o.b; }
    let sum = 0;
    for (let i = 0; i < 200; i++) {
      sum += hotOne({ a: i, b: 1 });
      await new Promise((resolve) => setImmediate(resolve));
    }
    process.stderr.write(JSON.stringify({ set, sum }) + '\\n');
  `;
  const r = spawnSync(process.execPath, ['--trace-opt', '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const result = r.stderr.split('\n').find((line) => line.startsWith('{"set"'));
  assert.ok(result !== undefined, r.stderr.slice(-500));
  const last = JSON.parse(result) as { set: string[]; sum: number };
  assert.equal(last.sum, 20_100);
  return { set: last.set, trace: r.stdout };
}

test('with the thresholds set, a function called 200 times is optimized by Maglev; without them it is not', () => {
  const expected = tieringFlags(process.versions.v8, process.execArgv, process.env.NODE_OPTIONS);
  const applied = traceHotFunction(true);
  assert.deepEqual(applied.set, expected);
  if (expected.length === 0) return; // this Node has no Maglev: nothing set, nothing to see
  const maglev = /<JSFunction hotOne\b[^>]*> for optimization to MAGLEV/;
  assert.match(applied.trace, maglev);
  assert.doesNotMatch(traceHotFunction(false).trace, maglev, "V8's own thresholds: not optimized after 200 calls");
});
