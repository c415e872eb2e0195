/**
 * A slow watcher: its client stops reading while many large events are written. The member
 * must not buffer them for it: its anonymous memory (RssAnon in /proc/<pid>/status, the heap and
 * buffers, without the memory-mapped database file) grows far less than the volume written.
 * Once the client reads again it receives every event, in order, with the right values.
 *
 * The raft log is kept short (`--snapshot-count`, `--snapshot-catchup-entries`) so that the log
 * itself, which a member holds in memory until a snapshot, does not hide what the watch does.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KVService, PutRequest } from '../../src/proto/index.ts';
import { compatTarget, Member, MemberKind } from '../helpers/member.ts';
import { WatchClient } from './watch-client.ts';

const TEST_TIMEOUT_MS = 60_000;
const VALUE_BYTES = 256 * 1024;
const EVENTS = 320;
const WRITERS = 4;
const SAMPLE_MS = 50;
/** Memory growth allowed, as a fraction of the bytes written to the watched keys. */
const GROWTH_FRACTION_MAX = 0.5;

let member: Member | undefined;
after(async () => {
  await member?.stop();
});

async function rssAnonBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^RssAnon:\s+(\d+) kB$/m.exec(status);
  assert.ok(match !== null, 'no RssAnon in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

function eventValue(i: number): Buffer {
  const value = Buffer.alloc(VALUE_BYTES, i % 251);
  value.write(`event-${i}:`, 0);
  return value;
}

/** Samples the process's memory until stopped; returns the highest reading. */
function sampleMemory(pid: number): { stop: () => Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await rssAnonBytes(pid));
      await sleep(SAMPLE_MS);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

async function putAll(m: Member, prefix: string, count: number, value: (i: number) => Buffer): Promise<number[]> {
  const revisions: number[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (next < count) {
        const i = next++;
        const resp = await m.channel.unary(
          KVService.Put,
          PutRequest.fromPartial({ key: Buffer.from(`${prefix}${String(i).padStart(4, '0')}`), value: value(i) }),
          { timeoutMs: 10_000 },
        );
        revisions[i] = Number(resp.header!.revision);
      }
    }),
  );
  return revisions;
}

test(`a watcher that reads nothing does not grow the member's memory (${compatTarget()})`, {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  member = await Member.start({
    kind: compatTarget(),
    name: 'slow',
    // etcd 3.4 keeps a fixed 5000 entries after a snapshot; it has no flag for it.
    extraArgs: [
      '--snapshot-count=20',
      ...(compatTarget() === MemberKind.ETCD ? [] : ['--snapshot-catchup-entries=10']),
    ],
  });
  const m = member;
  const pid = m.pid!;
  const watch = new WatchClient(m.endpoint);
  const written = EVENTS * VALUE_BYTES;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  // etcd 3.4 holds its last 5000 raft entries in memory whatever the watchers do: the bound is
  // checked on etcd-ts only.
  const checkGrowth = (growth: number, baseline: number, when: string) => {
    t.diagnostic(`${when}: memory grew ${mib(growth)} for ${mib(written)} written (baseline ${mib(baseline)})`);
    if (compatTarget() !== MemberKind.ETCD_TS) return;
    assert.ok(
      growth < written * GROWTH_FRACTION_MAX,
      `${when}: memory grew ${mib(growth)} while ${mib(written)} were written (baseline ${mib(baseline)})`,
    );
  };
  try {
    // Warm up the write path with the same load, so the baseline includes what any write costs.
    await putAll(m, 'warm/', EVENTS, eventValue);
    const id = await watch.create({ key: Buffer.from('big/'), rangeEnd: Buffer.from('big0') });
    watch.stream.pause();
    const baseline = await rssAnonBytes(pid);
    const stalledSampler = sampleMemory(pid);
    const revisions = await putAll(m, 'big/', EVENTS, eventValue);
    await sleep(500);
    checkGrowth((await stalledSampler.stop()) - baseline, baseline, 'while the watcher read nothing');
    assert.ok(watch.events(id).length < EVENTS, 'every event arrived although the client read nothing');

    // Reading again: everything arrives, in order, and the catch-up does not build it all at once.
    const catchUpSampler = sampleMemory(pid);
    watch.stream.resume();
    const events = await watch.waitEvents(id, EVENTS, 30_000);
    await sleep(200);
    checkGrowth((await catchUpSampler.stop()) - baseline, baseline, 'during the catch-up');
    assert.equal(watch.events(id).length, EVENTS, 'more events than puts');
    const byRevision = [...revisions.keys()].sort((a, b) => revisions[a]! - revisions[b]!);
    events.forEach((e, n) => {
      const i = byRevision[n]!;
      assert.equal(Number(e.kv!.modRevision), revisions[i], `event ${n} out of order`);
      assert.equal(Buffer.from(e.kv!.key).toString(), `big/${String(i).padStart(4, '0')}`);
      assert.ok(Buffer.from(e.kv!.value).equals(eventValue(i)), `event ${n}: wrong value`);
    });
  } finally {
    watch.close();
  }
});
