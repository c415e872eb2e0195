/**
 * A client slow to read its watch stream: the events it missed while its flow-control window
 * was full come merged, several revisions to a response (etcd sends a blocked watcher's events
 * the same way once its stream can take them), and every event arrives once, in order, with
 * its value.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KVService, PutRequest } from '../../src/proto/index.ts';
import { compatTarget, Member } from '../helpers/member.ts';
import { WatchClient } from './watch-client.ts';

const TEST_TIMEOUT_MS = 60_000;
const EVENTS = 400;
/** 400 events of 1 KiB: several times what a client's 64 KiB window lets through unread. */
const VALUE_BYTES = 1024;
const WATCHERS = 3;

let member: Member | undefined;
after(async () => {
  await member?.stop();
});

const putValue = (i: number): Buffer => Buffer.alloc(VALUE_BYTES, `value-${i}:`);

test(`a watch client slow to read gets the events it missed merged, all of them, in order (${compatTarget()})`, {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  member = await Member.start({ kind: compatTarget(), name: 'merge' });
  const m = member;
  const watch = new WatchClient(m.endpoint);
  try {
    const ids: bigint[] = [];
    for (let i = 0; i < WATCHERS; i++) {
      ids.push(await watch.create({ key: Buffer.from('m/'), rangeEnd: Buffer.from('m0'), prevKv: i === 1 }));
    }
    watch.stream.pause();
    const revisions: number[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const resp = await m.channel.unary(
        KVService.Put,
        PutRequest.fromPartial({ key: Buffer.from(`m/${i % 7}`), value: putValue(i) }),
        { timeoutMs: 10_000 },
      );
      revisions.push(Number(resp.header!.revision));
    }
    await sleep(200);
    watch.stream.resume();
    for (const id of ids) {
      const events = await watch.waitEvents(id, EVENTS, 30_000);
      assert.equal(events.length, EVENTS, `watch ${id}: more events than puts`);
      events.forEach((e, i) => {
        assert.equal(Number(e.kv!.modRevision), revisions[i], `watch ${id}: event ${i} out of order`);
        assert.equal(Buffer.from(e.kv!.key).toString(), `m/${i % 7}`);
        assert.ok(Buffer.from(e.kv!.value).equals(putValue(i)), `watch ${id}: event ${i}: wrong value`);
        if (id === ids[1] && i >= 7) {
          assert.ok(Buffer.from(e.prevKv!.value).equals(putValue(i - 7)), `watch ${id}: event ${i}: wrong prev_kv`);
        }
      });
      const responses = watch.responses(id);
      const most = Math.max(...responses.map((r) => r.events.length));
      assert.ok(
        responses.length < EVENTS / 2 && most > 1,
        `watch ${id}: ${EVENTS} events in ${responses.length} responses (at most ${most} in one)`,
      );
    }
  } finally {
    watch.close();
  }
});
