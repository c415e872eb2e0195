/**
 * Registers this process as an instance of a service until it is stopped (Ctrl-C). The
 * registration is bound to a lease kept alive in the background: if the process dies, the
 * instance disappears after the TTL; if the lease is lost, it registers again.
 *
 *   node --import tsx examples/service-registrar.ts [service] [instance-id] [address]
 *   (ETCD_ENDPOINTS=host:port,... to choose the cluster; 127.0.0.1:2379 by default)
 */
import { hostname } from 'node:os';
import { Client } from '../src/client/index.ts';

const [service = 'web', instanceId = `${hostname()}-${process.pid}`, address = 'http://127.0.0.1:8080'] =
  process.argv.slice(2);
const client = new Client({ endpoints: process.env.ETCD_ENDPOINTS ?? '127.0.0.1:2379' });

const registration = await client.register(service, instanceId, address, { ttl: 10 });
const stop = async () => {
  await registration.close();
  console.log(`deregistered ${registration.key}`);
  client.close();
};
// Handlers first: whoever reads the line below may stop this process right away.
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
registration.on('lost', () => console.log('lease lost: registering again'));
registration.on('registered', (lease: bigint) => console.log(`registered again with lease ${lease.toString(16)}`));
console.log(`registered ${registration.key} = ${address} (lease ${registration.leaseId?.toString(16)})`);
