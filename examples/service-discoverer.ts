/**
 * Follows the instances of a service and prints every change, with the instance a round-robin
 * load balancer would pick next, until stopped (Ctrl-C).
 *
 *   node --import tsx examples/service-discoverer.ts [service]
 *   (ETCD_ENDPOINTS=host:port,... to choose the cluster; 127.0.0.1:2379 by default)
 */
import { Client, type Instance } from '../src/client/index.ts';

const [service = 'web'] = process.argv.slice(2);
const client = new Client({ endpoints: process.env.ETCD_ENDPOINTS ?? '127.0.0.1:2379' });

const discovery = await client.discover(service);
const stop = async () => {
  await discovery.close();
  client.close();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
const show = (what: string, instance: Instance) => console.log(`${what} ${instance.id} ${instance.value}`);
discovery.on('added', (i: Instance) => show('added', i));
discovery.on('updated', (i: Instance) => show('updated', i));
discovery.on('removed', (i: Instance) => show('removed', i));
discovery.on('change', () => {
  const next = discovery.next();
  console.log(`now ${discovery.size} instance(s); next pick: ${next?.id ?? 'none'}`);
});
console.log(`${service}: ${discovery.size} instance(s)`);
for (const instance of discovery.instances()) show('present', instance);
