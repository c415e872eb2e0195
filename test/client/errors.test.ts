/**
 * Error mapping and framing, without a server: etcd's error strings become their typed errors
 * with the gRPC code and details kept; other statuses read as Go's client prints them; gRPC
 * messages split across chunks are reassembled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frameMessage, GrpcCallError, MessageFramer, Status } from '../../src/client/channel.ts';
import {
  CompactedError,
  DeadlineExceededError,
  EtcdError,
  fromGrpcError,
  GrpcStatusError,
  LeaseNotFoundError,
  NoLeaderError,
  PermissionDeniedError,
  UnavailableError,
} from '../../src/client/errors.ts';

test("etcd's error strings map to typed errors that keep code and details", () => {
  const cases: Array<[number, string, new (...a: never[]) => EtcdError, string]> = [
    [Status.NOT_FOUND, 'etcdserver: requested lease not found', LeaseNotFoundError, 'ETCD_LEASE_NOT_FOUND'],
    [Status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted', CompactedError, 'ETCD_COMPACTED'],
    [Status.UNAVAILABLE, 'etcdserver: no leader', NoLeaderError, 'ETCD_NO_LEADER'],
    [Status.PERMISSION_DENIED, 'etcdserver: permission denied', PermissionDeniedError, 'ETCD_PERMISSION_DENIED'],
  ];
  for (const [code, details, type, stable] of cases) {
    const err = fromGrpcError(new GrpcCallError(code, details));
    assert.ok(err instanceof type, details);
    assert.ok(err instanceof EtcdError);
    assert.equal(err.code, stable);
    assert.equal(err.grpcCode, code);
    assert.equal(err.details, details);
    assert.equal(err.message, details);
  }
});

test('other statuses read as Go prints them', () => {
  const refused = fromGrpcError(new GrpcCallError(Status.UNAVAILABLE, 'ECONNREFUSED: connect ECONNREFUSED', false));
  assert.ok(refused instanceof UnavailableError);
  assert.equal(refused.message, 'rpc error: code = Unavailable desc = ECONNREFUSED: connect ECONNREFUSED');
  const deadline = fromGrpcError(new GrpcCallError(Status.DEADLINE_EXCEEDED, 'whatever'));
  assert.ok(deadline instanceof DeadlineExceededError);
  assert.equal(deadline.message, 'context deadline exceeded');
  const other = fromGrpcError(new GrpcCallError(Status.UNIMPLEMENTED, 'unknown method'));
  assert.ok(other instanceof GrpcStatusError);
  assert.equal(other.message, 'rpc error: code = Unimplemented desc = unknown method');
  assert.equal(fromGrpcError(other), other);
});

test('messages split over chunks, and several in one chunk, come out whole', () => {
  const a = frameMessage(Buffer.from('first message'));
  const b = frameMessage(Buffer.alloc(0));
  const c = frameMessage(Buffer.from('third'));
  const all = Buffer.concat([a, b, c]);
  const framer = new MessageFramer();
  const out: string[] = [];
  framer.push(all.subarray(0, 2), (m) => out.push(m.toString()));
  framer.push(all.subarray(2, 9), (m) => out.push(m.toString()));
  framer.push(all.subarray(9), (m) => out.push(m.toString()));
  assert.deepEqual(out, ['first message', '', 'third']);
  assert.throws(() => new MessageFramer().push(Buffer.from([1, 0, 0, 0, 0]), () => {}), /compressed/);
});
