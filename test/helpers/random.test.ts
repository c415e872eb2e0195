import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deriveSeed, parseSeed, Random } from './random.ts';

test('the same seed gives the same sequence; another seed another one', () => {
  const draw = (seed: number) => {
    const rng = new Random(seed);
    return Array.from({ length: 64 }, () => rng.next());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  assert.notEqual(deriveSeed(7, 0), deriveSeed(7, 1));
  assert.equal(deriveSeed(7, 3), deriveSeed(7, 3));
});

test('int stays in its closed interval and reaches both ends', () => {
  const rng = new Random(1);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const value = rng.int(-2, 3);
    assert.ok(Number.isInteger(value) && value >= -2 && value <= 3, `${value}`);
    seen.add(value);
  }
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    [-2, -1, 0, 1, 2, 3],
  );
  assert.throws(() => rng.int(2, 1), RangeError);
});

test('weighted never picks a zero weight and follows the weights roughly', () => {
  const rng = new Random(9);
  const counts = { a: 0, b: 0, never: 0 };
  for (let i = 0; i < 4000; i++)
    counts[
      rng.weighted([
        ['a', 3],
        ['b', 1],
        ['never', 0],
      ] as const)
    ]++;
  assert.equal(counts.never, 0);
  assert.ok(counts.a > 2 * counts.b, JSON.stringify(counts));
  assert.throws(() => rng.weighted([['x', 0]]), RangeError);
});

test('parseSeed takes unsigned 32-bit decimals only', () => {
  assert.equal(parseSeed('4294967295', 'S'), 0xffffffff);
  assert.equal(parseSeed('0', 'S'), 0);
  for (const bad of ['', '-1', '4294967296', '0x10', '1.5', 'abc'])
    assert.throws(() => parseSeed(bad, 'S'), /S must be/);
});
