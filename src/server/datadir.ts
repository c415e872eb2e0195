import { constants as fsConstants, readFileSync } from 'node:fs';
import { access, chmod, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';

/**
 * The data directory, laid out as etcd lays it out, and the lock that keeps a second process
 * from opening it:
 *
 *   <data-dir>/            0700
 *     member/              0700
 *       wal/               0700  (or --wal-dir)
 *       snap/              0700
 *
 * On Linux the lock is a unix socket bound in the abstract namespace under a name derived from
 * the directory's device and inode: binding is atomic, the kernel releases it when the process
 * dies however it dies, and it leaves nothing on disk. The holder answers a connection with its
 * pid, so the refusal can say who holds the directory. Abstract sockets are per network
 * namespace: processes in different namespaces sharing a volume do not see each other's lock.
 * Elsewhere the lock is a pid file created exclusively; a stale one (its process is gone, or
 * its start time differs) is replaced.
 */

export const PRIVATE_DIR_MODE = 0o700;
/** How long to wait for the holder of a lock to say its pid. */
const LOCK_HOLDER_QUERY_MS = 500;
const PID_FILE = 'etcd-ts.lock';

export interface DataDirLayout {
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  readonly memberDir: string;
  readonly walDir: string;
  readonly snapDir: string;
}

export class DataDirError extends Error {
  override readonly name = 'DataDirError';
  readonly code: 'ERR_DATA_DIR_LOCKED' | 'ERR_DATA_DIR';
  /** The pid holding the lock, when known. */
  readonly holderPid: number | null;

  constructor(
    code: 'ERR_DATA_DIR_LOCKED' | 'ERR_DATA_DIR',
    message: string,
    holderPid: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.holderPid = holderPid;
  }
}

export type LockMethod = 'socket' | 'pidfile';

export interface OpenDataDirOptions {
  /** A dedicated WAL directory (`--wal-dir`); default `<data-dir>/member/wal`. */
  readonly walDir?: string;
  /** Default: `socket` on Linux, `pidfile` elsewhere. */
  readonly lockMethod?: LockMethod;
}

export interface DataDir extends DataDirLayout {
  /** Things worth a warning in the log (a directory readable by others...). */
  readonly warnings: readonly string[];
  /** Releases the lock; the directory stays. */
  close(): Promise<void>;
}

interface Lock {
  release(): Promise<void>;
}

/** Creates (or checks) the data directory and locks it for this process. */
export async function openDataDir(dataDir: string, options: OpenDataDirOptions = {}): Promise<DataDir> {
  if (dataDir === '') throw new DataDirError('ERR_DATA_DIR', '--data-dir must not be empty');
  const root = resolve(dataDir);
  const warnings: string[] = [];
  await ensurePrivateDir(root, warnings);
  try {
    await access(root, fsConstants.W_OK);
  } catch (err) {
    throw new DataDirError('ERR_DATA_DIR', `cannot write to data directory ${root}: ${(err as Error).message}`, null, {
      cause: err,
    });
  }

  const method = options.lockMethod ?? (process.platform === 'linux' ? 'socket' : 'pidfile');
  const lock = method === 'socket' ? await lockWithSocket(root) : await lockWithPidFile(root);

  try {
    const memberDir = join(root, 'member');
    const walDir =
      options.walDir !== undefined && options.walDir !== '' ? resolve(options.walDir) : join(memberDir, 'wal');
    const snapDir = join(memberDir, 'snap');
    await ensurePrivateDir(memberDir, warnings);
    await ensurePrivateDir(walDir, warnings);
    await ensurePrivateDir(snapDir, warnings);
    let closed = false;
    return {
      dataDir: root,
      memberDir,
      walDir,
      snapDir,
      warnings,
      async close() {
        if (closed) return;
        closed = true;
        await lock.release();
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** mkdir -p with 0700; an existing directory is kept as is, with a warning if others can read it. */
async function ensurePrivateDir(path: string, warnings: string[]): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    throw new DataDirError('ERR_DATA_DIR', `cannot create directory ${path}: ${(err as Error).message}`, null, {
      cause: err,
    });
  }
  const st = await stat(path);
  if (!st.isDirectory()) throw new DataDirError('ERR_DATA_DIR', `${path} exists and is not a directory`);
  if (created !== undefined) {
    // The umask may have cleared bits of 0700 (never added any); make it exact.
    if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) await chmod(path, PRIVATE_DIR_MODE);
    return;
  }
  if ((st.mode & 0o077) !== 0) {
    warnings.push(
      `check file permission: directory ${path} exist, but the permission is ${(st.mode & 0o777).toString(8).padStart(4, '0')}. The recommended permission is 0700 to prevent possible unprivileged access to the data`,
    );
  }
}

function lockedError(root: string, pid: number | null): DataDirError {
  const who = pid === null ? 'another process' : `another process (pid ${pid})`;
  return new DataDirError(
    'ERR_DATA_DIR_LOCKED',
    `data dir ${root} is in use by ${who}; stop it or choose another --data-dir`,
    pid,
  );
}

// ---- abstract unix socket ----

async function lockWithSocket(root: string): Promise<Lock> {
  const st = await stat(root);
  const name = `\0etcd-ts/data-dir/${st.dev}/${st.ino}`;
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${process.pid}\n`);
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(name, () => {
        server.removeListener('error', fail);
        ok();
      });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw lockedError(root, await askHolder(name));
    throw new DataDirError('ERR_DATA_DIR', `cannot lock data dir ${root}: ${(err as Error).message}`, null, {
      cause: err,
    });
  }
  server.unref();
  return { release: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((ok) => server.close(() => ok()));
}

/** The pid the holder of the lock reports, or null if it does not answer in time. */
function askHolder(name: string): Promise<number | null> {
  return new Promise((ok) => {
    let text = '';
    const socket = connect(name);
    const timer = setTimeout(() => {
      socket.destroy();
      ok(null);
    }, LOCK_HOLDER_QUERY_MS);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', () => {
      clearTimeout(timer);
      ok(null);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const pid = Number.parseInt(text, 10);
      ok(Number.isSafeInteger(pid) && pid > 0 ? pid : null);
    });
  });
}

// ---- pid file ----

/** The start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), or null where unknown. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function lockWithPidFile(root: string): Promise<Lock> {
  const path = join(root, PID_FILE);
  const content = `${process.pid} ${processStartTime(process.pid) ?? '-'}\n`;
  // Two attempts: the second follows the removal of a stale file.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return {
        async release() {
          const now = await readFile(path, 'utf8').catch(() => null);
          if (now === content) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DataDirError('ERR_DATA_DIR', `cannot lock data dir ${root}: ${(err as Error).message}`, null, {
          cause: err,
        });
      }
    }
    const held = await readFile(path, 'utf8').catch(() => '');
    const [pidText, startText] = held.trim().split(' ');
    const pid = Number.parseInt(pidText ?? '', 10);
    if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) {
      const start = processStartTime(pid);
      const sameProcess = start === null || startText === undefined || startText === '-' || start === startText;
      if (sameProcess) throw lockedError(root, pid);
    }
    await rm(path, { force: true });
  }
  throw lockedError(root, null);
}
