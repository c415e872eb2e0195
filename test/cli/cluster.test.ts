/**
 * etcdctl-ts against the real etcdctl 3.4: lease, member, endpoint and move-leader commands in
 * every output format, with their errors and exit codes (see compare.ts for how outputs are
 * compared and what is normalised).
 */
import { after, before, describe, test } from 'node:test';
import { MemberKind } from '../helpers/member.ts';
import { Pair } from './compare.ts';

const ExitCode = { OK: 0, ERROR: 1, BAD_CONNECTION: 2, BAD_FEATURE: 4, BAD_ARGS: 128 } as const;
const FORMATS = ['simple', 'json', 'fields'] as const;

/** Remaining TTLs tick while the two tools read them. */
function scrubRemaining(text: string): string {
  return text
    .replace(/remaining\(\d+s\)/g, 'remaining(<ttl>s)')
    .replace(/"ttl":\d+/g, '"ttl":<ttl>')
    .replace(/"TTL" : \d+/g, '"TTL" : <ttl>');
}

/** How long a health check took. */
function scrubTook(text: string): string {
  return (
    text
      .replace(/took = \S+/g, 'took = <took>')
      .replace(/"took":"[^"]*"/g, '"took":"<took>"')
      .replace(/"Took" : \S+/g, '"Took" : <took>')
      .replace(/\d[\d.]*(ns|µs|ms|s) \|/g, '<took> |')
      // The took column's width follows its text: compare tables without their padding.
      .replace(/-+/g, '-')
      .replace(/ +/g, ' ')
  );
}

/** Members come back ordered by id, and ids differ between the two clusters. */
function sortInitialCluster(text: string): string {
  return text.replace(
    /ETCD_INITIAL_CLUSTER="([^"]*)"/,
    (_, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`,
  );
}

/** The same for the members of a json answer. */
function sortMembersJson(text: string): string {
  return text.replace(/"members":\[(.*)\]\}/, (_, list: string) => {
    const items = list.split(/(?<=\}),(?=\{)/).sort();
    return `"members":[${items.join(',')}]}`;
  });
}

let pair: Pair;

describe('etcdctl-ts vs etcdctl: lease, member, endpoint, move-leader', { timeout: 120_000 }, () => {
  before(async () => {
    pair = await Pair.start();
  });
  after(async () => {
    await pair?.stop();
  });

  test('lease grant, timetolive, list, keep-alive --once, revoke', async () => {
    await pair.write(['lease', 'grant', '600']);
    await pair.write(['lease', 'grant', '900', '-w', 'json']);
    await pair.write(['lease', 'grant', '1200', '-w', 'fields']);
    await pair.write(['put', 'leased', 'v', '--lease={lease:1}']);
    await pair.write(['put', 'leased2', 'v', '--lease={lease:2}']);
    for (const format of FORMATS) {
      await pair.read(['lease', 'timetolive', '{lease:1}', '-w', format], { scrub: scrubRemaining });
      await pair.read(['lease', 'timetolive', '{lease:1}', '--keys', '-w', format], { scrub: scrubRemaining });
      await pair.read(['lease', 'list', '-w', format]);
      await pair.read(['lease', 'keep-alive', '--once', '{lease:2}', '-w', format]);
    }
    await pair.read(['lease', 'timetolive', '1234']);
    await pair.read(['lease', 'timetolive', '1234', '-w', 'json']);
    await pair.read(['lease', 'keep-alive', '--once', '1234'], { code: ExitCode.BAD_CONNECTION });
    await pair.write(['lease', 'revoke', '{lease:1}']);
    await pair.write(['lease', 'revoke', '{lease:2}', '-w', 'json']);
    await pair.write(['lease', 'revoke', '{lease:3}', '-w', 'fields']);
    await pair.read(['get', 'leased']);
    await pair.write(['lease', 'revoke', '{lease:1}'], { code: ExitCode.ERROR });
  });

  test('lease argument errors', async () => {
    await pair.read(['lease', 'grant'], { code: ExitCode.BAD_ARGS });
    await pair.read(['lease', 'grant', 'ten'], { code: ExitCode.BAD_ARGS });
    await pair.read(['lease', 'revoke'], { code: ExitCode.BAD_ARGS });
    await pair.read(['lease', 'revoke', 'xyz'], { code: ExitCode.BAD_ARGS });
    await pair.read(['lease', 'timetolive'], { code: ExitCode.BAD_ARGS });
    await pair.read(['lease', 'keep-alive'], { code: ExitCode.BAD_ARGS });
    await pair.read(['lease']);
    // The lease is granted (lease 4) before the table format turns out to be unsupported.
    await pair.write(['lease', 'grant', '5', '-w', 'table'], { code: ExitCode.BAD_FEATURE });
  });

  test('lease keep-alive renews until interrupted, and stops when the lease is gone', async () => {
    await pair.write(['lease', 'grant', '3000']);
    const lines = (n: number) => (stdout: string) => stdout.split('\n').length > n;
    // The first renewal is immediate; the next comes a third of the TTL later (1 s for 3 s).
    await pair.write(['lease', 'grant', '3']);
    const keepAlive = await pair.read(['lease', 'keep-alive', '{lease:6}'], {
      stopWhen: lines(2),
      // Killed by SIGINT (etcdctl has no handler for it): 130 from the shell's point of view.
      code: 130,
    });
    if (!keepAlive.ref.stdout.toString().includes('keepalived with TTL(3)')) throw new Error('no renewal printed');
    await pair.write(['lease', 'revoke', '{lease:5}']);
    await pair.read(['lease', 'keep-alive', '{lease:5}']);
    await pair.read(['lease', 'keep-alive', '{lease:5}', '-w', 'json']);
  });

  test('member list, add (learner), update, promote and remove', async () => {
    for (const format of [...FORMATS, 'table', 'protobuf']) {
      await pair.read(['member', 'list', '-w', format], format === 'protobuf' ? { binary: true } : {});
    }
    await pair.write(['member', 'add', 'newbie', '--learner', '--peer-urls=http://127.0.0.1:1'], {
      scrub: sortInitialCluster,
    });
    await pair.write(['member', 'add', 'other', '--learner', '--peer-urls=http://127.0.0.1:2'], {
      code: ExitCode.ERROR,
    });
    for (const format of [...FORMATS, 'table']) await pair.read(['member', 'list', '-w', format]);
    await pair.write(['member', 'update', '{member:1}', '--peer-urls=http://127.0.0.1:3']);
    await pair.write(['member', 'update', '{member:1}', '--peer-urls=http://127.0.0.1:4', '-w', 'json'], {
      scrub: sortMembersJson,
    });
    await pair.write(['member', 'promote', '{member:1}'], { code: ExitCode.ERROR });
    await pair.write(['member', 'remove', '{member:1}', '-w', 'json'], { scrub: sortMembersJson });
    await pair.write(['member', 'remove', '{member:1}'], { code: ExitCode.ERROR });
    await pair.write(['member', 'add', 'newer', '--learner', '--peer-urls=http://127.0.0.1:5', '-w', 'json'], {
      scrub: sortMembersJson,
    });
    await pair.write(['member', 'remove', '{member:2}']);
    await pair.write(['member', 'add', 'x', '--learner', '--peer-urls=http://127.0.0.1:6', '-w', 'fields'], {
      code: ExitCode.BAD_FEATURE,
    });
    await pair.write(['member', 'remove', '{member:3}', '-w', 'fields'], { code: ExitCode.BAD_FEATURE });
  });

  test('member argument errors', async () => {
    await pair.read(['member', 'add'], { code: ExitCode.BAD_ARGS });
    await pair.read(['member', 'add', 'a', 'http://127.0.0.1:9'], { code: ExitCode.BAD_ARGS });
    await pair.read(['member', 'add', 'a'], { code: ExitCode.BAD_ARGS });
    await pair.read(['member', 'remove'], { code: ExitCode.BAD_ARGS });
    await pair.read(['member', 'remove', 'zz'], { code: ExitCode.BAD_ARGS });
    await pair.read(['member', 'update', '1'], { code: ExitCode.BAD_ARGS });
    await pair.read(['member', 'promote', '1'], { code: ExitCode.ERROR });
  });

  test('endpoint status, hashkv and health in every format', async () => {
    await pair.a.settle();
    for (const format of [...FORMATS, 'table']) {
      await pair.read(['endpoint', 'status', '-w', format]);
      await pair.read(['endpoint', 'status', '--cluster', '-w', format]);
      await pair.read(['endpoint', 'hashkv', '-w', format]);
      await pair.read(['endpoint', 'hashkv', '--rev=2', '-w', format]);
      await pair.read(['endpoint', 'health', '-w', format], { scrub: scrubTook });
    }
    await pair.read(['endpoint', 'health', '--cluster'], { scrub: scrubTook });
    await pair.read(['endpoint', 'status', '-w', 'protobuf'], { code: ExitCode.BAD_FEATURE });
  });

  test('endpoints that do not answer', async () => {
    const dead = ['--endpoints=127.0.0.1:1', '--command-timeout=1s', '--dial-timeout=1s'];
    await pair.read([...dead, 'endpoint', 'health'], { noEndpoint: true, code: ExitCode.ERROR, scrub: scrubTook });
    await pair.read([...dead, 'endpoint', 'health', '-w', 'json'], {
      noEndpoint: true,
      code: ExitCode.ERROR,
      scrub: scrubTook,
    });
    await pair.read([...dead, 'endpoint', 'status'], { noEndpoint: true, code: ExitCode.ERROR });
    await pair.read([...dead, 'endpoint', 'hashkv'], { noEndpoint: true, code: ExitCode.ERROR });
  });

  test('move-leader', async () => {
    await pair.read(['move-leader', '{member:0}']);
    await pair.read(['move-leader', '{member:0}', '-w', 'json']);
    await pair.read(['move-leader'], { code: ExitCode.BAD_ARGS });
    await pair.read(['move-leader', 'xyz'], { code: ExitCode.BAD_ARGS });
    await pair.read(['move-leader', '{member:0}', '-w', 'fields'], { code: ExitCode.BAD_FEATURE });
  });
});

describe('etcdctl-ts vs etcdctl on etcd-ts: member list, endpoint status, hashkv, health', { timeout: 60_000 }, () => {
  let tsPair: Pair;
  before(async () => {
    tsPair = await Pair.start(MemberKind.ETCD_TS);
  });
  after(async () => {
    await tsPair?.stop();
  });

  test('the same output on the same etcd-ts member', async () => {
    await tsPair.write(['put', 'k', 'v']);
    await tsPair.a.settle();
    for (const format of [...FORMATS, 'table']) {
      await tsPair.read(['member', 'list', '-w', format]);
      await tsPair.read(['endpoint', 'status', '-w', format]);
      await tsPair.read(['endpoint', 'hashkv', '-w', format]);
      await tsPair.read(['endpoint', 'health', '-w', format], { scrub: scrubTook });
    }
  });
});
