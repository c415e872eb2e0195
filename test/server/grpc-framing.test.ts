import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GrpcError, GrpcStatus, grpcStatusName, toGrpcError } from '../../src/api/errors.ts';
import { DeadlineClock, type Expirable } from '../../src/api/grpc/deadline.ts';
import {
  decodeGrpcMessage,
  encodeFrame,
  encodeGrpcMessage,
  FrameDecoder,
  type FrameSink,
  formatGrpcTimeout,
  parseGrpcTimeout,
} from '../../src/api/grpc/index.ts';

class Collect implements FrameSink {
  frames: Buffer[] = [];
  errors: [string, number][] = [];
  onFrame(payload: Buffer): void {
    this.frames.push(Buffer.from(payload));
  }
  onFrameError(reason: string, length: number): void {
    this.errors.push([reason, length]);
  }
}

test('FrameDecoder: any messages, cut at any points, come out whole and in order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (messages, cuts) => {
        const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
        const points = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % stream.length)))].sort(
          (a, b) => a - b,
        );
        const sink = new Collect();
        const decoder = new FrameDecoder(1000, sink);
        let last = 0;
        for (const p of [...points, stream.length]) {
          decoder.push(stream.subarray(last, p));
          last = p;
        }
        assert.deepEqual(
          sink.frames.map((f) => [...f]),
          messages.map((m) => [...m]),
        );
        assert.equal(decoder.partial, false);
        assert.deepEqual(sink.errors, []);
      },
    ),
    { numRuns: 300 },
  );
});

test('FrameDecoder: a message inside one chunk is a view, not a copy', () => {
  const chunk = Buffer.concat([encodeFrame(Buffer.from('abc')), encodeFrame(Buffer.from('de'))]);
  const views: Buffer[] = [];
  new FrameDecoder(10, {
    onFrame: (p) => views.push(p),
    onFrameError: () => assert.fail('no error expected'),
  }).push(chunk);
  assert.equal(views.length, 2);
  assert.equal(views[0]!.buffer, chunk.buffer);
  assert.equal(views[1]!.toString(), 'de');
});

test('FrameDecoder: an oversized length or a bad flag stops decoding at the header', () => {
  const big = new Collect();
  const d = new FrameDecoder(4, big);
  d.push(Buffer.concat([encodeFrame(Buffer.from('1234')), Buffer.from([0, 0, 0, 0, 5])]));
  d.push(Buffer.from('abcde'));
  assert.deepEqual(
    big.frames.map((f) => f.toString()),
    ['1234'],
  );
  assert.deepEqual(big.errors, [['too-large', 5]]);

  const flag = new Collect();
  new FrameDecoder(4, flag).push(Buffer.from([2, 0, 0, 0, 1, 0]));
  assert.deepEqual(flag.errors, [['bad-flag', 1]]);
  const partial = new FrameDecoder(10, new Collect());
  partial.push(Buffer.from([0, 0, 0, 0, 3, 1]));
  assert.equal(partial.partial, true);
});

test('grpc-timeout: the spec syntax, and nothing else', () => {
  assert.equal(parseGrpcTimeout('100m'), 100);
  assert.equal(parseGrpcTimeout('5S'), 5000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('1500u'), 1.5);
  assert.equal(parseGrpcTimeout('99999999n'), 99.999999);
  for (const bad of ['', 'm', '123456789m', '12x', '-1S', '1.5S', ' 1S']) assert.equal(parseGrpcTimeout(bad), -1, bad);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10 ** 12 }), (ms) => {
      const parsed = parseGrpcTimeout(formatGrpcTimeout(ms));
      assert.ok(parsed >= ms, `${ms} -> ${formatGrpcTimeout(ms)}`);
    }),
  );
});

test('grpc-message percent-encoding round-trips any text and leaves plain ASCII alone', () => {
  assert.equal(encodeGrpcMessage('etcdserver: key is not provided'), 'etcdserver: key is not provided');
  assert.equal(encodeGrpcMessage('50%'), '50%25');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (text) => {
      const encoded = encodeGrpcMessage(text);
      assert.match(encoded, /^[\x20-\x7e]*$/);
      assert.equal(decodeGrpcMessage(encoded), text);
    }),
  );
  assert.equal(decodeGrpcMessage('100%'), '100%');
});

test('DeadlineClock: short deadlines on a timer, long ones on the shared tick, cancel disarms both', async () => {
  const clock = new DeadlineClock();
  const fired: string[] = [];
  const target = (name: string, timeoutMs: number): Expirable => ({
    expiresAtMs: Date.now() + timeoutMs,
    deadlineTimer: null,
    onExpired: () => fired.push(name),
  });
  const short = target('short', 20);
  const long = target('long', 1000);
  const cancelled = target('cancelled', 1000);
  const cancelledShort = target('cancelled-short', 20);
  clock.schedule(short, 20);
  clock.schedule(long, 1000);
  clock.schedule(cancelled, 1000);
  clock.schedule(cancelledShort, 20);
  assert.notEqual(short.deadlineTimer, null);
  assert.equal(long.deadlineTimer, null);
  assert.equal(clock.pendingCoarse, 2);
  clock.cancel(cancelled);
  clock.cancel(cancelledShort);
  assert.equal(clock.pendingCoarse, 1);
  await new Promise((r) => setTimeout(r, 1200));
  assert.deepEqual(fired, ['short', 'long']);
  assert.equal(clock.pendingCoarse, 0);
});

test('errors: GrpcError passes through, layer codes translate, the rest is UNKNOWN', () => {
  const own = new GrpcError(GrpcStatus.NOT_FOUND, 'x');
  assert.equal(toGrpcError(own), own);
  const compacted = toGrpcError(Object.assign(new Error('whatever'), { code: 'COMPACTED' }));
  assert.equal(compacted.code, GrpcStatus.OUT_OF_RANGE);
  assert.equal(compacted.message, 'etcdserver: mvcc: required revision has been compacted');
  const invalid = toGrpcError(Object.assign(new Error('etcdserver: bad range'), { code: 'INVALID_ARGUMENT' }));
  assert.equal(invalid.code, GrpcStatus.INVALID_ARGUMENT);
  assert.equal(invalid.message, 'etcdserver: bad range');
  const other = toGrpcError(new TypeError('oops'));
  assert.equal(other.code, GrpcStatus.UNKNOWN);
  assert.equal(other.message, 'oops');
  assert.equal(toGrpcError('text').message, 'text');
  assert.equal(grpcStatusName(12), 'UNIMPLEMENTED');
  assert.equal(grpcStatusName(99), 'CODE(99)');
});
