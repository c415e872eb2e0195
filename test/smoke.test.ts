import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VERSION } from '../src/version.ts';

test('version speaks etcd 3.5 API', () => {
  assert.match(VERSION.server, /^3\.5\./);
});
