/**
 * The learner layer over every method of the API: while the member is a learner only Status and
 * serializable Range reach their handlers; every other call, streams included, is refused with
 * etcd's error and its handler never runs. A voter's calls all pass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcError, GrpcStatus } from '../../src/api/errors.ts';
import type { AnyHandler } from '../../src/api/gateway/index.ts';
import { learnerLayer } from '../../src/api/learner.ts';
import { allMethods, KVService, MaintenanceService, RangeRequest } from '../../src/proto/index.ts';

function wrapAll(member: { isLearner(): boolean }, calls: string[]) {
  const layer = learnerLayer(member);
  return allMethods.map((desc) => {
    const handler = ((req: unknown) => {
      calls.push(desc.path);
      return req;
    }) as AnyHandler;
    return { desc, served: layer(desc, handler) as (req: unknown, call: unknown) => unknown };
  });
}

function refusal(fn: () => unknown): GrpcError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof GrpcError, String(err));
    return err;
  }
}

test('a learner serves Status and serializable ranges, and refuses everything else', () => {
  const calls: string[] = [];
  const wrapped = wrapAll({ isLearner: () => true }, calls);
  const served: string[] = [];
  for (const { desc, served: h } of wrapped) {
    const req = desc.path === KVService.Range.path ? RangeRequest.fromPartial({ key: Buffer.from('k') }) : {};
    const err = refusal(() => h(req, {}));
    if (err === undefined) {
      served.push(desc.path);
      continue;
    }
    assert.equal(err.code, GrpcStatus.UNAVAILABLE, desc.path);
    assert.equal(err.message, 'etcdserver: rpc not supported for learner', desc.path);
  }
  assert.deepEqual(served, [MaintenanceService.Status.path]);
  // A refused call never reaches its handler.
  assert.deepEqual(calls, [MaintenanceService.Status.path]);

  const range = wrapped.find((w) => w.desc.path === KVService.Range.path);
  assert.ok(range !== undefined);
  const req = RangeRequest.fromPartial({ key: Buffer.from('k'), serializable: true });
  assert.equal(range.served(req, {}), req);
  assert.deepEqual(calls, [MaintenanceService.Status.path, KVService.Range.path]);
});

test('a voter, or a learner once promoted, serves every method', () => {
  let learner = true;
  const calls: string[] = [];
  const wrapped = wrapAll({ isLearner: () => learner }, calls);
  learner = false;
  for (const { desc, served } of wrapped) {
    const req = desc.path === KVService.Range.path ? RangeRequest.fromPartial({}) : {};
    assert.equal(served(req, {}), req, desc.path);
  }
  assert.equal(calls.length, allMethods.length);
});
