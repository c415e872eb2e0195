/**
 * etcdctl-ts against the real etcdctl 3.4 for the long-running commands: watch (every format,
 * --prev-kv, ranges, the command run per event, ETCDCTL_WATCH_KEY, compaction, interactive
 * input errors), lock and elect; and the two tools' locks and elections excluding each other.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/client/index.ts';
import { Pair } from './compare.ts';
import { etcdctl, etcdctlTs } from './helpers.ts';

const ExitCode = { OK: 0, ERROR: 1, INVALID_INPUT: 3, INTERRUPTED: 5, BAD_ARGS: 128, SIGINT: 130 } as const;

let pair: Pair;
let client: Client;
/** The revision before the watched history. */
let start: bigint;

/** Stops a command once its output shows `marker`. */
function until(marker: string): (stdout: string) => boolean {
  return (stdout) => stdout.includes(marker);
}

/** Lease ids in lock and election keys differ from run to run. */
function scrubSessionKeys(text: string): string {
  return text.replace(/([A-Za-z0-9]+)\/[0-9a-f]{1,16}/g, '$1/<session>');
}

describe('etcdctl-ts vs etcdctl: watch, lock, elect', { timeout: 120_000 }, () => {
  before(async () => {
    pair = await Pair.start();
    client = new Client({ endpoints: [pair.a.member.endpoint] });
    start = (await client.get('w/')).header.revision;
    // The same history on both members, so later writes stay in lockstep.
    await pair.write(['put', 'w/a', '1']);
    await pair.write(['put', 'w/b', '2']);
    await pair.write(['put', 'w/a', '3']);
    await pair.write(['del', 'w/b']);
    await pair.write(['txn'], { input: '\nput w/c x\nput w/d y\n\n\n' });
    await pair.write(['put', 'w/end', 'done']);
  });
  after(async () => {
    client?.close();
    await pair?.stop();
  });

  test('watch replays history in every format, with --prev-kv and ranges', async () => {
    const rev = `--rev=${start + 1n}`;
    await pair.read(['watch', 'w/', '--prefix', rev], { stopWhen: until('w/end'), code: ExitCode.SIGINT });
    await pair.read(['watch', 'w/', '--prefix', rev, '-w', 'json'], {
      stopWhen: until(Buffer.from('w/end').toString('base64')),
      code: ExitCode.SIGINT,
    });
    await pair.read(['watch', 'w/', '--prefix', rev, '-w', 'fields'], {
      stopWhen: until('"Key" : "w/end"'),
      code: ExitCode.SIGINT,
    });
    await pair.read(['watch', 'w/a', rev, '--prev-kv'], {
      stopWhen: (s) => s.split('\n').length > 6,
      code: ExitCode.SIGINT,
    });
    await pair.read(['watch', 'w/b', 'w/d', rev, '--prev-kv', '-w', 'json'], {
      stopWhen: until(Buffer.from('w/c').toString('base64')),
      code: ExitCode.SIGINT,
    });
    await pair.read(['watch', '--prefix', rev], {
      env: { ETCDCTL_WATCH_KEY: 'w/' },
      stopWhen: until('w/end'),
      code: ExitCode.SIGINT,
    });
  });

  test('watch runs a command per event with the event in its environment', async () => {
    const script = 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"';
    const { ts } = await pair.read(['watch', 'w/', '--prefix', `--rev=${start + 1n}`, '--', 'sh', '-c', script], {
      stopWhen: until('"w/end" "done"'),
      code: ExitCode.SIGINT,
    });
    assert.match(ts.stdout.toString(), /^"PUT" "w\/a" "1" \d+$/m);
    assert.match(ts.stdout.toString(), /^"DELETE" "w\/b" "" \d+$/m);
  });

  test('watch argument errors, and interactive input it does not understand', async () => {
    await pair.read(['watch'], { code: ExitCode.BAD_ARGS });
    await pair.read(['watch', 'a', 'b', '--prefix'], { code: ExitCode.BAD_ARGS });
    await pair.read(['watch', 'a', '--'], { code: ExitCode.BAD_ARGS });
    await pair.read(['watch', 'a'], { env: { ETCDCTL_WATCH_KEY: 'b' }, code: ExitCode.BAD_ARGS });
    await pair.read(['watch', 'a'], { env: { ETCDCTL_WATCH_RANGE_END: 'b' }, code: ExitCode.BAD_ARGS });
    await pair.read(['watch', '-i'], { input: 'bogus x\nwatch\n\n', code: ExitCode.INVALID_INPUT });
  });

  test('a watch of compacted history is canceled by the server', async () => {
    await pair.write(['put', 'compact-me', 'x']);
    const now = (await client.get('compact-me')).header.revision;
    await pair.write(['compaction', String(now)]);
    await pair.read(['watch', 'w/', '--prefix', '--rev=2'], { code: ExitCode.INTERRUPTED });
  });

  test('lock prints its key and holds it until interrupted; runs a command under it', async () => {
    const scrub = scrubSessionKeys;
    await pair.read(['lock', 'L1'], { stopWhen: (s) => s.split('\n').length > 2, scrub });
    await pair.read(['lock', 'L1', '-w', 'json'], {
      stopWhen: (s) => s.includes('}'),
      scrub: (t) => t.replace(/"(key|mod_revision|create_revision|revision|lease)":("[^"]*"|\d+)/g, '"$1":<x>'),
    });
    await pair.read(['lock', 'L2', '--', 'sh', '-c', 'echo "key=$ETCD_LOCK_KEY"'], { scrub });
    await pair.read(['lock', 'L3', '--', 'false'], { code: ExitCode.ERROR });
    await pair.read(['lock'], { code: ExitCode.BAD_ARGS });
  });

  test('elect campaigns, prints the leader and resigns when interrupted; -l observes', async () => {
    const scrub = scrubSessionKeys;
    await pair.read(['elect', 'E1', 'p1'], { stopWhen: (s) => s.includes('p1'), scrub });
    const holder = client.election('E2');
    await holder.campaign('v1');
    await pair.read(['elect', '-l', 'E2'], { stopWhen: (s) => s.includes('v1'), scrub, code: ExitCode.OK });
    await holder.close();
    await pair.read(['elect'], { code: ExitCode.BAD_ARGS });
    await pair.read(['elect', 'a', 'b', 'c'], { code: ExitCode.BAD_ARGS });
    await pair.read(['elect', 'a'], { code: ExitCode.BAD_ARGS });
    await pair.read(['elect', '-l', 'a', 'b'], { code: ExitCode.BAD_ARGS });
  });

  test("each tool's lock excludes the other's holders", async () => {
    const endpoint = `--endpoints=${pair.a.member.endpoint}`;
    for (const [holderRun, waiterRun] of [
      [etcdctlTs, etcdctl],
      [etcdctl, etcdctlTs],
    ] as const) {
      const release = new AbortController();
      let held!: () => void;
      const holding = new Promise<void>((resolve) => (held = resolve));
      const holder = holderRun([endpoint, 'lock', 'X'], { stop: release.signal, onStdout: () => held() });
      await holding;
      let waiterGot = false;
      const waiter = waiterRun([endpoint, 'lock', 'X'], {
        stopWhen: (s) => s.includes('X/'),
        onStdout: () => {
          waiterGot = true;
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 700));
      assert.equal(waiterGot, false, 'the second holder got the lock while the first held it');
      release.abort();
      const [h, w] = await Promise.all([holder, waiter]);
      assert.equal(h.code, ExitCode.OK, h.stderr.toString());
      assert.match(w.stdout.toString(), /^X\/[0-9a-f]+\n/);
      assert.ok(waiterGot);
    }
  });
});
