/**
 * Crash test of etcd-ts (or of the real etcd with COMPAT_TARGET=etcd, to prove the test): a
 * client writes distinct keys one after the other and records every acknowledged put; the
 * server is SIGKILLed at a seeded random moment and restarted on the same data dir, 3 to 5
 * times. After each restart every acknowledged write is there with its value and its revision,
 * and the revisions are contiguous from the client's point of view: each acknowledged put has
 * the revision of the one before plus one, and the one put in flight at the kill is either
 * absent or present with exactly the next revision, never anything else.
 *
 *   KV_CRASH_SEED=<seed> node --import tsx --test test/compat/kv-crash.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcCallError } from '../../src/client/channel.ts';
import { type KeyValue, KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { compatTarget, Member } from '../helpers/member.ts';
import { deriveSeed, parseSeed, Random, timeSeed } from '../helpers/random.ts';

const ROUNDS_MIN = 3;
const ROUNDS_MAX = 5;
/** The kill comes this long after the writer starts (seeded, uniform). */
const KILL_AFTER_MS_MIN = 50;
const KILL_AFTER_MS_MAX = 900;
const PUT_TIMEOUT_MS = 5_000;
const READ_TIMEOUT_MS = 10_000;
const WRITES_PER_ROUND_MAX = 20_000;
const TEST_TIMEOUT_MS = 90_000;
const PREFIX = 'crash/';

const seed =
  process.env.KV_CRASH_SEED !== undefined ? parseSeed(process.env.KV_CRASH_SEED, 'KV_CRASH_SEED') : timeSeed();

interface Write {
  key: string;
  value: string;
}

interface AckedWrite extends Write {
  revision: bigint;
}

/** What the client knows: the acknowledged puts in order, and the revision of the last one. */
interface History {
  acked: AckedWrite[];
  /** The last revision the client saw the server at (its first put must land at this + 1). */
  revision: bigint;
}

function keyOf(round: number, index: number): string {
  return `${PREFIX}${String(round).padStart(2, '0')}/${String(index).padStart(6, '0')}`;
}

/**
 * Puts distinct keys until a put fails (the kill) or `stop()` is called. Returns the put in
 * flight when it failed, if any: it may or may not have been applied.
 */
async function writeUntilFailure(
  member: Member,
  round: number,
  rng: Random,
  history: History,
  stopped: () => boolean,
): Promise<Write | undefined> {
  const channel = member.channel;
  for (let index = 0; index < WRITES_PER_ROUND_MAX && !stopped(); index++) {
    const write = { key: keyOf(round, index), value: `r${round}i${index}-${rng.next().toString(36)}` };
    let revision: bigint | undefined;
    try {
      const response = await channel.unary(
        KVService.Put,
        PutRequest.fromPartial({ key: Buffer.from(write.key), value: Buffer.from(write.value) }),
        { timeoutMs: PUT_TIMEOUT_MS },
      );
      revision = response.header?.revision;
    } catch (err) {
      if (!(err instanceof GrpcCallError)) throw err;
      return write;
    }
    assert.equal(
      revision,
      history.revision + 1n,
      `put ${write.key} got revision ${revision} after ${history.revision}`,
    );
    history.acked.push({ ...write, revision });
    history.revision = revision;
  }
  return undefined;
}

/** Every key under the test's prefix, read in one linearizable range. */
async function readAll(member: Member): Promise<{ kvs: Map<string, KeyValue>; revision: bigint }> {
  const response = await member.channel.unary(
    KVService.Range,
    RangeRequest.fromPartial({ key: Buffer.from(PREFIX), rangeEnd: Buffer.from(PREFIX.slice(0, -1) + '0') }),
    { timeoutMs: READ_TIMEOUT_MS },
  );
  const kvs = new Map<string, KeyValue>();
  for (const kv of response.kvs) kvs.set(Buffer.from(kv.key).toString(), kv);
  assert.equal(BigInt(kvs.size), response.count, 'range returned every key it counted');
  return { kvs, revision: response.header?.revision ?? -1n };
}

/**
 * Checks the restarted server against the history, and folds the put in flight into it when the
 * server has it (the next round then starts after its revision).
 */
async function verifyAfterRestart(member: Member, history: History, inFlight: Write | undefined): Promise<string> {
  const { kvs, revision } = await readAll(member);
  for (const write of history.acked) {
    const kv = kvs.get(write.key);
    assert.ok(kv !== undefined, `acknowledged put ${write.key} (revision ${write.revision}) lost`);
    assert.equal(Buffer.from(kv.value).toString(), write.value, `value of ${write.key}`);
    assert.equal(kv.modRevision, write.revision, `mod_revision of ${write.key}`);
    assert.equal(kv.createRevision, write.revision, `create_revision of ${write.key}`);
    assert.equal(kv.version, 1n, `version of ${write.key}`);
  }
  let expectedKeys = history.acked.length;
  let outcome = 'no put was in flight';
  if (inFlight !== undefined) {
    const kv = kvs.get(inFlight.key);
    if (kv === undefined) {
      outcome = `the put in flight (${inFlight.key}) was lost, as it may be`;
    } else {
      assert.equal(Buffer.from(kv.value).toString(), inFlight.value, `value of the put in flight ${inFlight.key}`);
      assert.equal(kv.modRevision, history.revision + 1n, `revision of the put in flight ${inFlight.key}`);
      history.acked.push({ ...inFlight, revision: kv.modRevision });
      history.revision = kv.modRevision;
      expectedKeys++;
      outcome = `the put in flight (${inFlight.key}) was applied at revision ${kv.modRevision}`;
    }
  }
  assert.equal(kvs.size, expectedKeys, 'no key the client did not write');
  assert.equal(revision, history.revision, 'the server revision is the last write: no gap, no reuse');
  return outcome;
}

test(`KV crash: ${compatTarget()} SIGKILLed while writing (seed ${seed})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // The kill schedule is drawn first, so that it does not depend on how many puts got through.
  const schedule = new Random(seed);
  const killAfterMs = Array.from({ length: schedule.int(ROUNDS_MIN, ROUNDS_MAX) }, () =>
    schedule.int(KILL_AFTER_MS_MIN, KILL_AFTER_MS_MAX),
  );
  const values = new Random(deriveSeed(seed, 1));
  const member = await Member.start({ kind: compatTarget(), name: 'crash' });
  try {
    const history: History = { acked: [], revision: 1n };
    for (const [round, delayMs] of killAfterMs.entries()) {
      const ackedBefore = history.acked.length;
      let killed = false;
      const writer = writeUntilFailure(member, round, values, history, () => killed);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      await member.kill('SIGKILL');
      killed = true;
      const inFlight = await writer;
      const acknowledged = history.acked.length - ackedBefore;
      await member.restart();
      const outcome = await verifyAfterRestart(member, history, inFlight);
      t.diagnostic(
        `round ${round}: killed after ${delayMs} ms, ${acknowledged} puts ` +
          `acknowledged; ${outcome}; revision now ${history.revision}`,
      );
      assert.ok(acknowledged > 0, `round ${round}: the writer got no put through`);
    }
    // Once more after the last restart, with a write: revisions continue from the last one.
    const response = await member.channel.unary(
      KVService.Put,
      PutRequest.fromPartial({ key: Buffer.from(`${PREFIX}final`), value: Buffer.from('x') }),
      { timeoutMs: PUT_TIMEOUT_MS },
    );
    assert.equal(response.header?.revision, history.revision + 1n, 'first put after the last restart');
  } finally {
    await member.stop();
  }
});
