/**
 * Keys, transactions, leases and watches with etcd-ts/client, start to finish.
 *
 *   node --import tsx examples/walkthrough.ts            (etcd on 127.0.0.1:2379)
 *   ETCD_ENDPOINTS=127.0.0.1:2379,127.0.0.1:22379 node --import tsx examples/walkthrough.ts
 */
import { Client, compare, op } from '../src/client/index.ts';

const client = new Client({ endpoints: process.env.ETCD_ENDPOINTS ?? '127.0.0.1:2379' });
const prefix = `walkthrough/${process.pid}/`;

try {
  // Keys and values: strings, bytes or JSON; every revision is an exact bigint.
  const put = await client.put(`${prefix}greeting`, 'hello');
  console.log(`put greeting at revision ${put.header.revision}`);
  console.log(`get greeting: ${await client.getString(`${prefix}greeting`)}`);
  await client.putJson(`${prefix}config`, { replicas: 3 });
  console.log(`config: ${JSON.stringify(await client.getJson(`${prefix}config`))}`);
  const listed = await client.get(prefix, { prefix: true, keysOnly: true });
  console.log(`keys under the prefix: ${listed.kvs.map((kv) => kv.key.toString().slice(prefix.length)).join(', ')}`);

  // A transaction: compare-and-swap.
  const swapped = await client
    .txn()
    .if(compare.value(`${prefix}greeting`, '=', 'hello'))
    .then(op.put(`${prefix}greeting`, 'hello, world'))
    .else(op.get(`${prefix}greeting`))
    .commit();
  console.log(`compare-and-swap succeeded: ${swapped.succeeded}`);

  // A watch, as an async iterable: every change under the prefix, in order.
  const watcher = client.watch(prefix, { prefix: true, prevKv: true });
  await watcher.ready();
  const seen = (async () => {
    const lines: string[] = [];
    for await (const batch of watcher) {
      for (const event of batch.events) {
        const key = event.kv.key.toString().slice(prefix.length);
        lines.push(`${event.type} ${key}${event.type === 'put' ? ` = ${event.kv.value}` : ''}`);
      }
      if (lines.length >= 3) break;
    }
    return lines;
  })();

  // A lease: the key lives as long as the lease; revoking it deletes the key (the watch sees it).
  const lease = await client.lease(10);
  await client.put(`${prefix}session`, 'alive', { lease });
  const info = await lease.timeToLive({ keys: true });
  console.log(
    `lease ${lease.id.toString(16)}: ttl ${info.ttl}s, keys ${info.keys.map((k) => k.toString().slice(prefix.length))}`,
  );
  await client.put(`${prefix}greeting`, 'bye');
  await lease.revoke();
  for (const line of await seen) console.log(`watch: ${line}`);
  console.log(`session after revoke: ${(await client.getString(`${prefix}session`)) ?? '(gone)'}`);

  await client.delete(prefix, { prefix: true });
  console.log('done');
} finally {
  client.close();
}
