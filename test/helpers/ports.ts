/** Free TCP ports on 127.0.0.1 for processes started by tests. */
import { createServer } from 'node:net';

/** Ports handed out by this process, so two calls never return the same port. */
const handedOut = new Set<number>();
const PORT_ATTEMPTS_MAX = 50;

/** A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const port = await bindEphemeral();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port after ${PORT_ATTEMPTS_MAX} attempts`);
}

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('listening socket has no port'));
      });
    });
  });
}
