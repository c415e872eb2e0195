import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesText, plainResponse, toPlain } from './normalize.ts';

test('bytes print readably and unambiguously', () => {
  assert.equal(bytesText(Buffer.from('ab c')), 'ab c');
  assert.equal(bytesText(Buffer.from([0, 0xff, 0x5c, 0x41])), '\\x00\\xff\\\\A');
  assert.notEqual(bytesText(Buffer.from('\\x00')), bytesText(Buffer.from([0])));
});

test('plain data keeps every field, with bytes and int64 values as strings', () => {
  assert.deepEqual(toPlain({ key: Buffer.from('k'), rev: 5n, ok: true, list: [1n], skip: undefined }), {
    key: 'b"k"',
    rev: '5n',
    ok: true,
    list: ['1n'],
  });
  // An empty Buffer and an empty Uint8Array are the same bytes.
  assert.deepEqual(toPlain(Buffer.alloc(0)), toPlain(new Uint8Array()));
});

test('only the top-level header loses cluster id, member id and raft term', () => {
  const header = { clusterId: 1n, memberId: 2n, revision: 9n, raftTerm: 3n };
  const nested = { header: { ...header }, kvs: [] };
  const plain = plainResponse({ header, responses: [nested] });
  assert.deepEqual(plain, {
    header: { revision: '9n' },
    responses: [{ header: { clusterId: '1n', memberId: '2n', revision: '9n', raftTerm: '3n' }, kvs: [] }],
  });
  // The input is not changed.
  assert.equal(header.clusterId, 1n);
});
