// The pieces under the streams: frame splitting over arbitrary chunk boundaries, the bounded
// peer queue, and the round-trip histogram.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeMessage, encodeMessage } from '../../src/raft/index.ts';
import { ErrFrameTooLarge } from '../../src/transport/errors.ts';
import { encodeFrame, FrameDecoder } from '../../src/transport/framing.ts';
import { FrameQueue } from '../../src/transport/queue.ts';
import { RoundTripRecorder, RTT_BUCKETS_SECONDS } from '../../src/transport/rtt.ts';
import { appMessage } from './helpers.ts';

/** Cuts `bytes` at the given offsets (sorted, deduplicated, in range). */
function cut(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.byteLength + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const p of points) {
    out.push(bytes.subarray(start, p));
    start = p;
  }
  out.push(bytes.subarray(start));
  return out;
}

describe('FrameDecoder', () => {
  it('yields the same frames however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (bodies, offsets) => {
          const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
          const got: Uint8Array[] = [];
          const decoder = new FrameDecoder(4096, (body) => got.push(body.slice()));
          for (const chunk of cut(stream, offsets)) decoder.push(chunk);
          assert.equal(decoder.atBoundary, true);
          assert.deepEqual(got, bodies);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a partial frame until its last byte arrives', () => {
    const frames: Uint8Array[] = [];
    const decoder = new FrameDecoder(100, (b) => frames.push(b.slice()));
    const frame = encodeFrame(new Uint8Array([1, 2, 3]));
    for (let i = 0; i < frame.length - 1; i++) {
      decoder.push(frame.subarray(i, i + 1));
      assert.equal(decoder.atBoundary, false);
    }
    assert.deepEqual(frames, []);
    decoder.push(frame.subarray(frame.length - 1));
    assert.deepEqual(frames, [new Uint8Array([1, 2, 3])]);
    assert.equal(decoder.atBoundary, true);
  });

  it('refuses a frame over the limit from its header alone', () => {
    const decoder = new FrameDecoder(1000, () => assert.fail('no frame expected'));
    const header = encodeFrame(new Uint8Array(1001)).subarray(0, 4);
    assert.throws(() => decoder.push(header), ErrFrameTooLarge);
    const split = new FrameDecoder(1000, () => assert.fail('no frame expected'));
    split.push(header.subarray(0, 2));
    assert.throws(() => split.push(header.subarray(2)), /1001 bytes exceeds the limit of 1000/);
  });

  it('hands out frames that decodeMessage copies out of (entry data does not alias the chunk)', () => {
    const msg = appMessage(1n, 2n, 5, 64);
    const chunk = encodeFrame(encodeMessage(msg));
    let decoded = null as ReturnType<typeof decodeMessage> | null;
    new FrameDecoder(1000, (body) => {
      decoded = decodeMessage(body);
    }).push(chunk);
    chunk.fill(0);
    assert.deepEqual(decoded, msg);
    assert.equal(Buffer.isBuffer(decoded!.entries[0]!.data), false);
  });
});

describe('FrameQueue', () => {
  it('is bounded in messages and in bytes, and keeps order across the ring', () => {
    const q = new FrameQueue(3, 100);
    assert.equal(q.push(new Uint8Array(10).fill(1)), true);
    assert.equal(q.push(new Uint8Array(10).fill(2)), true);
    assert.equal(q.push(new Uint8Array(90)), false, 'byte bound');
    assert.equal(q.push(new Uint8Array(10).fill(3)), true);
    assert.equal(q.push(new Uint8Array(1)), false, 'message bound');
    assert.equal(q.length, 3);
    assert.equal(q.bytes, 30);
    assert.equal(q.shift()![0], 1);
    assert.equal(q.push(new Uint8Array(10).fill(4)), true, 'wraps around');
    assert.deepEqual([q.shift()![0], q.shift()![0], q.shift()![0]], [2, 3, 4]);
    assert.equal(q.shift(), undefined);
    assert.equal(q.bytes, 0);
    q.push(new Uint8Array(5));
    q.push(new Uint8Array(5));
    assert.equal(q.clear(), 2);
    assert.equal(q.length, 0);
    assert.equal(q.bytes, 0);
    assert.throws(() => new FrameQueue(0, 10), RangeError);
  });
});

describe('RoundTripRecorder', () => {
  it("counts observations into etcd's buckets (0.1 ms doubling to 3.2768 s)", () => {
    assert.equal(RTT_BUCKETS_SECONDS.length, 16);
    assert.equal(RTT_BUCKETS_SECONDS[0], 0.0001);
    assert.ok(Math.abs(RTT_BUCKETS_SECONDS[15]! - 3.2768) < 1e-9);
    const r = new RoundTripRecorder();
    assert.ok(Number.isNaN(r.stats().lastSeconds));
    r.observe(0.00005);
    r.observe(0.0003);
    r.observe(10);
    r.observe(-1); // ignored
    const s = r.stats();
    assert.equal(s.count, 3);
    assert.equal(s.minSeconds, 0.00005);
    assert.equal(s.maxSeconds, 10);
    assert.equal(s.lastSeconds, 10);
    assert.ok(Math.abs(s.sumSeconds - 10.00035) < 1e-9);
    assert.equal(s.cumulativeCounts[0], 1);
    assert.equal(s.cumulativeCounts[1], 1);
    assert.equal(s.cumulativeCounts[2], 2, '0.3 ms is in the le=0.4ms bucket');
    assert.equal(s.cumulativeCounts[15], 2, '10 s is only in +Inf');
  });
});
