/**
 * A fault-injecting TCP proxy in front of one member's peer listener, for partition tests.
 *
 * Every member advertises its proxy's URL as its peer URL, so every connection another member
 * opens to it (etcd-ts members dial where they send) passes through the proxy. The proxy learns
 * which process opened each connection (Linux: the dialing socket's inode in /proc/net/tcp, then
 * the process holding that inode in /proc/<pid>/fd), so one direction of one link can be cut:
 * `block(from)` turns the connections from `from` into black holes (the bytes are swallowed,
 * nothing comes back, as on a cut cable) and holds new ones silent; `unblock(from)` destroys the
 * swallowed connections so that the dialer starts afresh. Connections from processes the proxy
 * cannot name (the test process itself) are cut only by `block(ANY_SOURCE)`.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** `block(ANY_SOURCE)` cuts every connection, whoever opened it. */
export const ANY_SOURCE = '*';

/** Names the process behind a pid, or undefined for a process that is not a member. */
export type ProcessNamer = () => ReadonlyMap<number, string>;

interface Link {
  readonly from: string | undefined;
  readonly inbound: Socket;
  readonly outbound: Socket | undefined;
  blackholed: boolean;
}

const LOOPBACK = '127.0.0.1';

export class PeerProxy {
  /** The port the proxy listens on (the port of the member's advertised peer URL). */
  readonly port: number;
  /** The port of the member's peer listener that connections are forwarded to. */
  readonly targetPort: number;
  private readonly server: Server;
  private readonly names: ProcessNamer;
  private readonly links = new Set<Link>();
  private readonly blocked = new Set<string>();
  private closed = false;
  /** Connections accepted so far, per dialing member (for tests of the proxy itself). */
  readonly accepted = new Map<string, number>();

  private constructor(server: Server, port: number, targetPort: number, names: ProcessNamer) {
    this.server = server;
    this.port = port;
    this.targetPort = targetPort;
    this.names = names;
  }

  /** Listens on `port` (0: any free port) of 127.0.0.1 and forwards to `targetPort`. */
  static async listen(targetPort: number, names: ProcessNamer, port = 0): Promise<PeerProxy> {
    const server = createServer({ pauseOnConnect: true });
    const listening = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, LOOPBACK, () => {
        server.off('error', reject);
        const address = server.address();
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('proxy socket has no port'));
      });
    });
    const proxy = new PeerProxy(server, listening, targetPort, names);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  get url(): string {
    return `http://${LOOPBACK}:${this.port}`;
  }

  /** Cuts the connections from `from` (a member name, or ANY_SOURCE) to the member behind the proxy. */
  block(from: string): void {
    this.blocked.add(from);
    for (const link of this.links) if (this.isBlocked(link.from)) this.blackhole(link);
  }

  /** Lets `from` through again; the connections swallowed while it was cut are closed. */
  unblock(from: string): void {
    this.blocked.delete(from);
    for (const link of [...this.links]) if (link.blackholed && !this.isBlocked(link.from)) this.drop(link);
  }

  /** Lets everyone through again. */
  unblockAll(): void {
    for (const from of [...this.blocked]) this.unblock(from);
  }

  /** Member names whose connections are cut (ANY_SOURCE included). */
  blockedSources(): string[] {
    return [...this.blocked];
  }

  /** Open connections, with the member that opened each (undefined: not a known member). */
  connections(): { from: string | undefined; blackholed: boolean }[] {
    return [...this.links].map((l) => ({ from: l.from, blackholed: l.blackholed }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const link of [...this.links]) this.drop(link);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private isBlocked(from: string | undefined): boolean {
    return this.blocked.has(ANY_SOURCE) || (from !== undefined && this.blocked.has(from));
  }

  private accept(inbound: Socket): void {
    if (this.closed) {
      inbound.destroy();
      return;
    }
    const from = this.identify(inbound);
    if (from !== undefined) this.accepted.set(from, (this.accepted.get(from) ?? 0) + 1);
    inbound.on('error', () => {});
    if (this.isBlocked(from)) {
      const link: Link = { from, inbound, outbound: undefined, blackholed: false };
      this.links.add(link);
      this.blackhole(link);
      return;
    }
    const outbound = tcpConnect({ host: LOOPBACK, port: this.targetPort });
    outbound.on('error', () => {});
    const link: Link = { from, inbound, outbound, blackholed: false };
    this.links.add(link);
    const forward = (src: Socket, dst: Socket) => {
      src.on('data', (chunk: Buffer) => {
        if (link.blackholed) return;
        if (!dst.write(chunk)) {
          src.pause();
          dst.once('drain', () => {
            if (!link.blackholed) src.resume();
          });
        }
      });
      src.once('end', () => {
        if (!link.blackholed) dst.end();
      });
    };
    forward(inbound, outbound);
    forward(outbound, inbound);
    const close = () => {
      // A cut link stays as it is until unblocked: neither end learns that the other closed.
      if (link.blackholed || !this.links.delete(link)) return;
      inbound.destroy();
      outbound.destroy();
    };
    inbound.once('close', close);
    outbound.once('close', close);
    inbound.resume();
  }

  /** Swallows whatever either side sends; neither side learns anything. */
  private blackhole(link: Link): void {
    if (link.blackholed) return;
    link.blackholed = true;
    link.inbound.on('data', () => {});
    link.inbound.resume();
    if (link.outbound !== undefined) {
      link.outbound.on('data', () => {});
      link.outbound.resume();
    }
  }

  private drop(link: Link): void {
    this.links.delete(link);
    link.inbound.destroy();
    link.outbound?.destroy();
  }

  /** The member whose process opened `socket` (the other end of an accepted connection). */
  private identify(socket: Socket): string | undefined {
    const remotePort = socket.remotePort;
    if (remotePort === undefined) return undefined;
    const inode = dialingSocketInode(remotePort, this.port);
    if (inode === undefined) return undefined;
    const target = `socket:[${inode}]`;
    for (const [pid, name] of this.names()) if (holdsFile(pid, target)) return name;
    return undefined;
  }
}

/** The inode of the 127.0.0.1:`localPort` -> 127.0.0.1:`remotePort` socket, from /proc/net/tcp. */
export function dialingSocketInode(localPort: number, remotePort: number): string | undefined {
  const local = `0100007F:${hexPort(localPort)}`;
  const remote = `0100007F:${hexPort(remotePort)}`;
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote) return fields[9];
  }
  return undefined;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

function holdsFile(pid: number, target: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return true;
    } catch {
      // The descriptor closed while we looked.
    }
  }
  return false;
}
