/**
 * The client's KV API, transactions and STM against the real etcd and against etcd-ts alike:
 * every get option, put and delete options, compaction, the transaction builder, STM under
 * contention, typed errors, and bad input refused before anything is sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  CompactedError,
  compare,
  DuplicateKeyError,
  EmptyKeyError,
  EtcdError,
  FutureRevisionError,
  KeyNotFoundError,
  op,
  StmConflictError,
  TooManyOpsError,
  ValueProvidedError,
} from '../../src/client/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';

const keys = (r: { kvs: Array<{ key: Buffer }> }) => r.kvs.map((kv) => kv.key.toString());

for (const kind of [MemberKind.ETCD, MemberKind.ETCD_TS]) {
  describe(`client KV against ${kind}`, { timeout: 90_000 }, () => {
    let member: Member;
    let client: Client;

    before(async () => {
      member = await Member.start({ kind, name: 'client-kv', extraArgs: ['--max-txn-ops=16'] });
      client = new Client({ endpoints: [member.endpoint] });
    });
    after(async () => {
      client?.close();
      await member?.stop();
    });

    test('put and get strings, bytes and JSON; prevKv, ignoreValue', async () => {
      const first = await client.put('a', 'one');
      assert.equal(typeof first.header.revision, 'bigint');
      const second = await client.put('a', Buffer.from([0, 1, 255]), { prevKv: true });
      assert.equal(second.prevKv?.value.toString(), 'one');
      assert.equal(second.header.revision, first.header.revision + 1n);
      const got = await client.getOne('a');
      assert.deepEqual(got?.value, Buffer.from([0, 1, 255]));
      assert.equal(got?.version, 2n);
      assert.equal(got?.createRevision, first.header.revision);
      assert.equal(got?.modRevision, second.header.revision);
      await client.putJson('j', { n: 1, list: ['x'] });
      assert.deepEqual(await client.getJson('j'), { n: 1, list: ['x'] });
      assert.equal(await client.getString('missing'), undefined);
      await client.put('a', '', { ignoreValue: true });
      assert.deepEqual((await client.getOne('a'))?.value, Buffer.from([0, 1, 255]));
      await assert.rejects(client.put('a', 'x', { ignoreValue: true }), ValueProvidedError);
      await assert.rejects(client.put('nope', '', { ignoreValue: true }), KeyNotFoundError);
      await assert.rejects(client.put('', 'v'), EmptyKeyError);
    });

    test('a range of several MiB (values of 1 byte to 1 MiB) comes back whole and in order', async () => {
      const sizes = [1, 64, 65, 300_000, 1024 * 1024, ...Array.from({ length: 20 }, (_, i) => 100_000 + i * 7_919)];
      const value = (i: number): Buffer => Buffer.alloc(sizes[i]!, 97 + (i % 26));
      const key = (i: number): string => `big/${String(i).padStart(2, '0')}`;
      for (let i = 0; i < sizes.length; i++) await client.put(key(i), value(i));
      const all = await client.get('big/', { prefix: true });
      assert.equal(all.count, BigInt(sizes.length));
      assert.deepEqual(
        keys(all),
        sizes.map((_, i) => key(i)),
      );
      for (const [i, kv] of all.kvs.entries()) assert.ok(kv.value.equals(value(i)), `value of ${key(i)}`);
      const limited = await client.get('big/', { prefix: true, limit: 5 });
      assert.equal(limited.more, true);
      for (const [i, kv] of limited.kvs.entries()) assert.ok(kv.value.equals(value(i)), `${key(i)} with a limit`);
      const keysOnly = await client.get('big/', { prefix: true, keysOnly: true });
      assert.deepEqual(keys(keysOnly), keys(all));
      await client.delete('big/', { prefix: true });
    });

    test('get: prefix, range, fromKey, revision, limit, sort, keysOnly, countOnly, serializable', async () => {
      for (const k of ['p/1', 'p/2', 'p/3', 'q/1']) await client.put(k, `v-${k}`);
      assert.deepEqual(keys(await client.get('p/', { prefix: true })), ['p/1', 'p/2', 'p/3']);
      assert.deepEqual(keys(await client.get('p/1', { end: 'p/3' })), ['p/1', 'p/2']);
      assert.deepEqual(keys(await client.get('p/3', { fromKey: true })), ['p/3', 'q/1']);
      const all = await client.get('', { prefix: true });
      assert.ok(keys(all).includes('a') && keys(all).includes('q/1'));
      const limited = await client.get('p/', { prefix: true, limit: 2 });
      assert.deepEqual(keys(limited), ['p/1', 'p/2']);
      assert.equal(limited.more, true);
      assert.equal(limited.count, 3n);
      const sorted = await client.get('p/', { prefix: true, sort: { target: 'key', order: 'descend' } });
      assert.deepEqual(keys(sorted), ['p/3', 'p/2', 'p/1']);
      const byCreate = await client.get('', { prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 });
      assert.equal(keys(byCreate)[0], 'a');
      const byMod = await client.get('p/', { prefix: true, sort: { target: 'mod', order: 'descend' }, limit: 1 });
      assert.equal(keys(byMod)[0], 'p/3');
      const keysOnly = await client.get('p/', { prefix: true, keysOnly: true });
      assert.ok(keysOnly.kvs.every((kv) => kv.value.length === 0));
      const counted = await client.get('p/', { prefix: true, countOnly: true });
      assert.equal(counted.kvs.length, 0);
      assert.equal(counted.count, 3n);
      const rev = (await client.put('p/1', 'changed')).header.revision;
      const old = await client.get('p/1', { revision: rev - 1n });
      assert.equal(old.kvs[0]?.value.toString(), 'v-p/1');
      assert.equal((await client.get('p/1', { serializable: true })).kvs[0]?.value.toString(), 'changed');
      const recent = await client.get('p/', { prefix: true, minModRevision: rev });
      assert.deepEqual(keys(recent), ['p/1']);
    });

    test('delete one key, a prefix, a range, from a key, with prevKv', async () => {
      for (const k of ['d/1', 'd/2', 'd/3', 'd/4', 'e/1']) await client.put(k, k);
      assert.equal((await client.delete('d/1')).deleted, 1n);
      const ranged = await client.delete('d/2', { end: 'd/4', prevKv: true });
      assert.equal(ranged.deleted, 2n);
      assert.deepEqual(
        ranged.prevKvs.map((kv) => kv.value.toString()),
        ['d/2', 'd/3'],
      );
      assert.equal((await client.delete('d/', { prefix: true })).deleted, 1n);
      assert.equal((await client.delete('e/1', { fromKey: true })).deleted >= 1n, true);
      assert.equal((await client.delete('nothing')).deleted, 0n);
    });

    test('compaction makes old revisions unreadable; future revisions are refused', async () => {
      const r1 = (await client.put('c', '1')).header.revision;
      const r2 = (await client.put('c', '2')).header.revision;
      await client.compact(r2, { physical: true });
      await assert.rejects(client.get('c', { revision: r1 }), (err: unknown) => {
        assert.ok(err instanceof CompactedError);
        assert.ok(err instanceof EtcdError);
        assert.equal(err.code, 'ETCD_COMPACTED');
        assert.equal(err.grpcCode, 11);
        assert.equal(err.message, 'etcdserver: mvcc: required revision has been compacted');
        return true;
      });
      await assert.rejects(client.get('c', { revision: r2 + 1000n }), FutureRevisionError);
      await assert.rejects(client.compact(r1), CompactedError);
    });

    test('transactions read in order: if, then, else; nested; typed results', async () => {
      await client.put('t', 'v1');
      const ok = await client
        .txn()
        .if(compare.value('t', '=', 'v1'), compare.version('t', '>', 0), compare.createRevision('t', '!=', 0))
        .then(op.put('t', 'v2', { prevKv: true }), op.get('t'), op.delete('gone'))
        .else(op.get('t'))
        .commit();
      assert.equal(ok.succeeded, true);
      assert.deepEqual(
        ok.responses.map((r) => r.type),
        ['put', 'get', 'delete'],
      );
      const put = ok.responses[0]!;
      assert.ok(put.type === 'put' && put.prevKv?.value.toString() === 'v1');
      const got = ok.responses[1]!;
      assert.ok(got.type === 'get' && got.kvs[0]?.value.toString() === 'v2');
      const failed = await client
        .txn()
        .if(compare.modRevision('t', '<', 1))
        .then(op.put('t', 'never'))
        .else(op.get('t'), op.txn([compare.value('t', '=', 'v2')], [op.put('t', 'nested')]))
        .commit();
      assert.equal(failed.succeeded, false);
      const nested = failed.responses[1]!;
      assert.ok(nested.type === 'txn' && nested.succeeded);
      assert.equal(await client.getString('t'), 'nested');
      const onRange = await client
        .txn()
        .if(compare.version('t', '>', 0, { prefix: true }))
        .commit();
      assert.equal(onRange.succeeded, true);
    });

    test('transaction errors are typed; misuse of the builder is refused', async () => {
      await assert.rejects(client.txn().then(op.put('x', '1'), op.put('x', '2')).commit(), DuplicateKeyError);
      const many = Array.from({ length: 17 }, (_, i) => op.put(`m${i}`, 'v'));
      await assert.rejects(
        client
          .txn()
          .then(...many)
          .commit(),
        TooManyOpsError,
      );
      await assert.rejects(
        (async () => {
          await (client.txn().if(compare.value('t', '=', 'x')) as unknown as Promise<unknown>);
        })(),
        /not a promise/,
      );
      assert.throws(
        () =>
          client
            .txn()
            .then(op.get('a'))
            .if(compare.value('a', '=', 'b')),
        /before/,
      );
      assert.throws(() => compare.value('a', '~' as '=', 'b'), /operator/);
      const txn = client.txn();
      await txn.commit();
      await assert.rejects(txn.commit(), /committed once/);
    });

    test('STM: concurrent increments all count; endless conflicts give up', async () => {
      await client.put('counter', '0');
      const others = Array.from({ length: 3 }, () => new Client({ endpoints: [member.endpoint] }));
      try {
        const increments = [client, ...others].flatMap((c) =>
          Array.from({ length: 5 }, () =>
            c.stm(async (tx) => {
              const n = Number(await tx.getString('counter'));
              tx.put('counter', String(n + 1));
              tx.put('last', 'written');
            }),
          ),
        );
        await Promise.all(increments);
        assert.equal(await client.getString('counter'), '20');
      } finally {
        for (const c of others) c.close();
      }
      let runs = 0;
      await assert.rejects(
        client.stm(
          async (tx) => {
            runs++;
            await tx.get('contended');
            await client.put('contended', String(runs));
            tx.put('contended', 'mine');
          },
          { attempts: 3 },
        ),
        StmConflictError,
      );
      assert.equal(runs, 3);
      const read = await client.stm(async (tx) => {
        tx.put('fresh', 'a');
        return tx.getString('fresh');
      });
      assert.equal(read, 'a');
    });

    test('bad input is refused before anything is sent', async () => {
      await assert.rejects(client.get('a', { prefix: true, end: 'b' }), /one of prefix, end and fromKey/);
      await assert.rejects(client.get('a', { limit: -1 }), RangeError);
      await assert.rejects(client.get('a', { revision: 1.5 }), RangeError);
      await assert.rejects(client.grant(1.5), RangeError);
      assert.throws(() => new Client({ endpoints: [] }), /at least one endpoint/);
      assert.throws(() => new Client({ endpoints: 'ftp://x:1' }), /unsupported endpoint scheme/);
    });
  });
}
