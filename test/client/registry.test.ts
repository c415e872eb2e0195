/**
 * Service registration and discovery on the real etcd: instances appear in a discovery in a
 * stable sorted order, updates and deregistration are seen at once, and a registration whose
 * lease is lost registers again by itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type Instance } from '../../src/client/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';

let member: Member;
let client: Client;
let other: Client;

function ids(list: readonly Instance[]): string[] {
  return list.map((i) => i.id);
}

describe('client service registry', { timeout: 60_000 }, () => {
  before(async () => {
    member = await Member.start({ kind: MemberKind.ETCD, name: 'registry' });
    client = new Client({ endpoints: [member.endpoint] });
    other = new Client({ endpoints: [member.endpoint] });
  });
  after(async () => {
    client?.close();
    other?.close();
    await member?.stop();
  });

  test('instances appear sorted, update, and leave at once when deregistered', async () => {
    const early = await client.register('api', 'b-node', 'http://b', { ttl: 5 });
    const discovery = await other.discover('api');
    const events: string[] = [];
    discovery.on('added', (i: Instance) => events.push(`added ${i.id}`));
    discovery.on('updated', (i: Instance, was: Instance) => events.push(`updated ${i.id} ${was.value} -> ${i.value}`));
    discovery.on('removed', (i: Instance) => events.push(`removed ${i.id}`));
    assert.deepEqual(ids(discovery.instances()), ['b-node']);
    assert.equal(early.key, '/services/api/b-node');
    const later = await client.register('api', 'a-node', 'http://a', { ttl: 5 });
    await discovery.waitFor((list) => list.length === 2);
    assert.deepEqual(ids(discovery.instances()), ['a-node', 'b-node']);
    assert.deepEqual(
      [discovery.next()?.id, discovery.next()?.id, discovery.next()?.id],
      ['a-node', 'b-node', 'a-node'],
    );
    await later.update('http://a2');
    await discovery.waitFor(() => discovery.get('a-node')?.value.toString() === 'http://a2');
    await later.close();
    await discovery.waitFor((list) => list.length === 1);
    await early.close();
    await discovery.waitFor((list) => list.length === 0);
    assert.deepEqual(events, [
      'added a-node',
      'updated a-node http://a -> http://a2',
      'removed a-node',
      'removed b-node',
    ]);
    assert.equal((await client.get('/services/api/', { prefix: true })).count, 0n);
    await discovery.close();
    await assert.rejects(client.register('api', 'bad/id', 'x'), /must not contain/);
    await assert.rejects(client.register('', 'id', 'x'), /non-empty/);
  });

  test('a registration whose lease is lost registers again', async () => {
    const registration = await client.register('svc', 'node-1', 'v', { ttl: 2 });
    const discovery = await other.discover('svc');
    const firstLease = registration.leaseId!;
    const lost = new Promise((resolve) => registration.once('lost', resolve));
    const again = new Promise<bigint>((resolve) => registration.once('registered', resolve));
    await other.revoke(firstLease);
    await lost;
    const secondLease = await again;
    assert.notEqual(secondLease, firstLease);
    await discovery.waitFor(() => discovery.get('node-1')?.lease === secondLease);
    assert.equal((await client.getOne('/services/svc/node-1'))?.lease, secondLease);
    await registration.close();
    await discovery.waitFor((list) => list.length === 0);
    await discovery.close();
  });
});
