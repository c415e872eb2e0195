/** Free TCP ports on 127.0.0.1 for processes started by tests. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports handed out by this process, so two calls never return the same port. */
const handedOut = new Set<number>();
const PORT_ATTEMPTS_MAX = 50;
/** The lowest port tried; the highest is just below the system's ephemeral range. */
const LOW_PORT = 10_000;

/**
 * Ports below the kernel's ephemeral range: a port found free there cannot be taken, before
 * the server started by the test binds it, by the source port of one of the many loopback
 * connections the other tests open (a port from the ephemeral range could).
 */
const HIGH_PORT = ephemeralRangeStart() - 1;

function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 0;
  } catch {
    return 0;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const wanted = HIGH_PORT > LOW_PORT + 1000 ? LOW_PORT + Math.floor(Math.random() * (HIGH_PORT - LOW_PORT)) : 0;
    if (handedOut.has(wanted)) continue;
    const port = await bindFree(wanted);
    if (port !== null && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port after ${PORT_ATTEMPTS_MAX} attempts`);
}

/** Binds `port` (0: any) on 127.0.0.1 and closes it again: the port, or null when it was in use. */
function bindFree(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(null);
      else reject(err);
    });
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('listening socket has no port'));
      });
    });
  });
}
